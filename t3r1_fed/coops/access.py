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

from aiohttp import web
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.db.models import Activity, Actor, Coop, Follow, Object, utcnow
from t3r1_fed.db.models_coops import CoopBan
from t3r1_fed.federation.verifier import signed_requester

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


# ---- HTTP: the signed requester of a GET, and what a row belongs to -----------------------


async def request_can_read(
    ctx: Context,
    request: web.Request,
    group: Actor,
    coop: Coop | None,
    session: AsyncSession | None = None,
) -> bool:
    """May the signer of this GET read `group`'s content? Public cooperatives: always.

    Every handler serving content or a collection of a cooperative (objects, activities,
    outbox, media files, feature collections) calls this and answers 404 when it is False.
    """
    if coop is None or not coop.private:
        return True
    requester = await signed_requester(ctx, request)
    if requester is None:
        return False
    if session is not None:
        return await can_read(session, group, coop, requester)
    async with ctx.sessions() as own:
        return await can_read(own, group, coop, requester)


async def group_and_coop(session: AsyncSession, actor_id: int | None) -> tuple[Actor, Coop] | None:
    """The local cooperative whose Group actor has row id `actor_id`, if any."""
    if actor_id is None:
        return None
    row = (
        await session.execute(
            select(Actor, Coop)
            .join(Coop, Coop.actor_id == Actor.id)
            .where(Actor.id == actor_id, Actor.local.is_(True))
        )
    ).first()
    return (row[0], row[1]) if row is not None else None


async def object_coop(session: AsyncSession, obj: Object) -> tuple[Actor, Coop] | None:
    """The local cooperative an object belongs to: the one it was posted into, or the
    cooperative that authored it (the group-authored copies of coops/private.py)."""
    found = await group_and_coop(session, obj.group_id)
    return found if found is not None else await group_and_coop(session, obj.author_id)


async def activity_coop(session: AsyncSession, row: Activity) -> tuple[Actor, Coop] | None:
    """The local cooperative an activity we published belongs to: its actor when that is a
    cooperative, else the cooperative of the object it is about."""
    found = await group_and_coop(session, row.actor_id)
    if found is not None or not row.object_uri:
        return found
    obj = (await session.execute(select(Object).where(Object.uri == row.object_uri))).scalar()
    return await object_coop(session, obj) if obj is not None else None


async def readable_coop(
    ctx: Context, request: web.Request, session: AsyncSession
) -> tuple[Actor, Coop] | None:
    """The local cooperative named in the route (`{name}`), if the requester may read it.

    Handlers of a cooperative's collections answer 404 when this is None: an unknown
    cooperative and one the requester may not read look the same.
    """
    uri = ctx.uris.coop(request.match_info["name"])
    q = (
        select(Actor, Coop)
        .join(Coop, Coop.actor_id == Actor.id)
        .where(Actor.uri == uri, Actor.local.is_(True), Actor.deleted_at.is_(None))
    )
    found = (await session.execute(q)).first()
    if found is None:
        return None
    group, coop = found
    if not await request_can_read(ctx, request, group, coop, session):
        return None
    return group, coop

