"""Who may read a cooperative's content over federation.

Public cooperatives: everyone. Private cooperatives (GROUPS.md): only signed requests by
- an accepted, non-banned member, or
- the instance (Application/Service) actor of a server where such a member lives —
  servers fetch with their instance actor on their members' behalf.
A former member, a banned member, a non-member person on a member's server, an unsigned
client and a server without members all get 404 (never 403: the content's existence
is not revealed).
"""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.db.models import Actor, Coop, Follow, utcnow
from t3r1_fed.db.models_coops import CoopBan

SERVER_TYPES = frozenset({"Application", "Service"})


async def is_banned(session: AsyncSession, group_id: int, actor_id: int) -> bool:
    q = select(CoopBan.actor_id).where(
        CoopBan.coop_actor_id == group_id,
        CoopBan.actor_id == actor_id,
        or_(CoopBan.expires_at.is_(None), CoopBan.expires_at > utcnow()),
    )
    return (await session.execute(q)).first() is not None


async def is_member(session: AsyncSession, group_id: int, actor_id: int) -> bool:
    q = select(Follow.id).where(
        Follow.followee_id == group_id, Follow.follower_id == actor_id, Follow.state == "accepted"
    )
    return (await session.execute(q)).first() is not None


async def domain_has_member(session: AsyncSession, group_id: int, domain: str) -> bool:
    banned = select(CoopBan.actor_id).where(CoopBan.coop_actor_id == group_id)
    q = (
        select(Follow.id)
        .join(Actor, Actor.id == Follow.follower_id)
        .where(
            Follow.followee_id == group_id,
            Follow.state == "accepted",
            Actor.domain == domain,
            Actor.id.not_in(banned),
        )
        .limit(1)
    )
    return (await session.execute(q)).first() is not None


async def can_read(
    session: AsyncSession, group: Actor, coop: Coop | None, requester_uri: str | None
) -> bool:
    """May the (verified) signer `requester_uri` read content of `group`?"""
    if coop is None or not coop.private:
        return True
    if requester_uri is None:
        return False
    requester = (await session.execute(select(Actor).where(Actor.uri == requester_uri))).scalar()
    if requester is None or requester.deleted_at is not None:
        return False
    if await is_banned(session, group.id, requester.id):
        return False
    if await is_member(session, group.id, requester.id):
        return True
    if requester.type in SERVER_TYPES:
        return await domain_has_member(session, group.id, requester.domain)
    return False
