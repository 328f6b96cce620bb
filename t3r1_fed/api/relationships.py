"""Relationships between the viewer and other accounts: Mastodon's Relationship entity, and
follow / unfollow from the client API.

Following reuses the federation code: `actors.follows.follow` (a signed Follow to a remote
actor; `coops.membership.decide_follow` for a local one, so joining a local cooperative
follows its openness) and `actors.follows.unfollow` (Undo{Follow}); leaving a local
cooperative is `coops.membership.leave`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors import follows as follows_mod
from t3r1_fed.actors.local import ActorError
from t3r1_fed.context import Context
from t3r1_fed.coops import membership
from t3r1_fed.db.models import Actor, Coop, Follow, utcnow
from t3r1_fed.db.models_coops import CoopBan


async def relationships(
    session: AsyncSession, me: Actor, ids: Sequence[int]
) -> list[dict[str, Any]]:
    """Relationship entities of `me` with the accounts `ids` (unknown ids left out)."""
    if not ids:
        return []
    known = list((await session.execute(
        select(Actor.id).where(Actor.id.in_(ids), Actor.deleted_at.is_(None))
    )).scalars())
    if not known:
        return []
    rows = (await session.execute(
        select(Follow).where(or_(
            (Follow.follower_id == me.id) & Follow.followee_id.in_(known),
            (Follow.followee_id == me.id) & Follow.follower_id.in_(known),
        ))
    )).scalars().all()
    outgoing = {f.followee_id: f for f in rows if f.follower_id == me.id}
    incoming = {f.follower_id: f for f in rows if f.followee_id == me.id}
    # A cooperative that banned the viewer blocks them (a ban is sent as Block).
    banned_by = set((await session.execute(
        select(CoopBan.coop_actor_id).where(
            CoopBan.actor_id == me.id, CoopBan.coop_actor_id.in_(known),
            or_(CoopBan.expires_at.is_(None), CoopBan.expires_at > utcnow()),
        )
    )).scalars())
    out: list[dict[str, Any]] = []
    order = {i: n for n, i in enumerate(ids)}
    for aid in sorted(set(known), key=lambda i: order.get(i, 0)):
        mine = outgoing.get(aid)
        theirs = incoming.get(aid)
        out.append({
            "id": str(aid),
            "following": mine is not None and mine.state == "accepted",
            "showing_reblogs": mine is not None and mine.show_reblogs,
            "notifying": mine is not None and mine.notify,
            "languages": None,
            "followed_by": theirs is not None and theirs.state == "accepted",
            "blocking": False,
            "blocked_by": aid in banned_by,
            "muting": False,
            "muting_notifications": False,
            "requested": mine is not None and mine.state == "pending",
            "requested_by": theirs is not None and theirs.state == "pending",
            "domain_blocking": False,
            "endorsed": False,
            "note": "",
        })
    return out


async def relationship(session: AsyncSession, me: Actor, target: Actor) -> dict[str, Any]:
    found = await relationships(session, me, [target.id])
    if found:
        return found[0]
    return {"id": str(target.id), "following": False, "showing_reblogs": False,
            "notifying": False, "languages": None, "followed_by": False, "blocking": False,
            "blocked_by": False, "muting": False, "muting_notifications": False,
            "requested": False, "requested_by": False, "domain_blocking": False,
            "endorsed": False, "note": ""}


class FollowRefused(Exception):
    """A follow the target refuses (banned from a cooperative, or one that is not open)."""


async def follow(
    ctx: Context, session: AsyncSession, me: Actor, username: str, target: Actor,
    *, reblogs: bool | None, notify: bool | None,
) -> Follow:
    """Follow `target` (or join it, for a cooperative), or update the follow's options."""
    try:
        f = await follows_mod.follow(ctx, session, username, target.uri)
    except ActorError as e:
        raise FollowRefused(str(e)) from e
    if reblogs is not None:
        f.show_reblogs = reblogs
    if notify is not None:
        f.notify = notify
    await session.flush()
    return f


async def unfollow(ctx: Context, session: AsyncSession, me: Actor, username: str,
                   target: Actor) -> None:
    """Stop following `target` (Undo{Follow} if remote); leave it if a local cooperative.
    Withdraws a pending request too. Not following is not an error (as Mastodon)."""
    existing = (await session.execute(
        select(Follow.id).where(Follow.follower_id == me.id, Follow.followee_id == target.id)
    )).first()
    if existing is None:
        return
    is_coop = target.local and (await session.execute(
        select(Coop.actor_id).where(Coop.actor_id == target.id)
    )).first() is not None
    if is_coop:
        await membership.leave(ctx, session, me, target)
    else:
        await follows_mod.unfollow(ctx, session, username, target.uri)
    await session.flush()
