"""Who may follow (join) what: the membership state machine's entry point.

Members of a cooperative are its accepted followers, so a member on any Mastodon-compatible
server joins by following. Open cooperatives accept at once; moderated, invite-only and
private ones leave the request pending for a moderator (issue #3 adds the moderator side).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.db.models import Actor, Coop


async def decide_follow(session: AsyncSession, target: Actor, follower: Actor) -> str:
    """'accepted', 'pending' or 'rejected' for a new Follow of local `target`."""
    if target.type == "Group":
        coop = (await session.execute(select(Coop).where(Coop.actor_id == target.id))).scalar()
        if coop is None:
            return "rejected"
        if coop.openness == "open" and not coop.private:
            return "accepted"
        return "pending"
    return "pending" if target.manually_approves_followers else "accepted"
