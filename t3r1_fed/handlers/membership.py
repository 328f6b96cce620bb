"""A cooperative's `members` and `pendingFollowers` (FEP-4ccd) collections.

Union membership is sensitive, so both are served only to signed requests, public
cooperatives included, and answer 404 to everyone else (never 403: nothing is revealed):
- `members` (accepted followers): to an actor whose instance has an accepted,
  non-banned member (the servers that already know some of the members);
- `pendingFollowers` (requests awaiting a moderator): to the cooperative's moderators
  and admins only.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.documents import register_group_collection
from t3r1_fed.appkeys import CTX
from t3r1_fed.coops.access import domain_has_member, is_banned
from t3r1_fed.coops.roles import is_moderator
from t3r1_fed.db.models import Actor, Coop, Follow
from t3r1_fed.federation.verifier import signed_requester
from t3r1_fed.handlers.activitypub import _paged
from t3r1_fed.httputil import json_error

register_group_collection("members")
register_group_collection("pendingFollowers")


async def _group_and_requester(
    request: web.Request, session: AsyncSession, signer: str | None
) -> tuple[Actor, Actor] | None:
    ctx = request.app[CTX]
    if signer is None:
        return None
    uri = ctx.uris.coop(request.match_info["name"])
    group = (
        await session.execute(
            select(Actor)
            .join(Coop, Coop.actor_id == Actor.id)
            .where(Actor.uri == uri, Actor.local.is_(True), Actor.deleted_at.is_(None))
        )
    ).scalar()
    if group is None:
        return None
    requester = (await session.execute(select(Actor).where(Actor.uri == signer))).scalar()
    if requester is None or requester.deleted_at is not None:
        return None
    if await is_banned(session, group.id, requester.id):
        return None
    return group, requester


async def _followers(request: web.Request, session: AsyncSession, group: Actor, state: str,
                     name: str) -> web.Response:
    ctx = request.app[CTX]
    where = (Follow.followee_id == group.id, Follow.state == state)
    return await _paged(
        request,
        session,
        ctx.uris.sub(group.uri, name),
        select(func.count()).select_from(Follow).where(*where),
        select(Follow.id, Actor.uri).join(Actor, Actor.id == Follow.follower_id).where(*where),
        Follow.id,
        lambda r: r[1],
    )


async def members(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    # Verify first: the signer's actor may be fetched and stored in another session, which
    # a session already reading (an SQLite snapshot) would not see.
    signer = await signed_requester(ctx, request)
    async with ctx.sessions() as session:
        found = await _group_and_requester(request, session, signer)
        if found is None or not await domain_has_member(session, found[0].id, found[1].domain):
            return json_error(404, "no such collection")
        return await _followers(request, session, found[0], "accepted", "members")


async def pending_followers(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    # Verify first: the signer's actor may be fetched and stored in another session, which
    # a session already reading (an SQLite snapshot) would not see.
    signer = await signed_requester(ctx, request)
    async with ctx.sessions() as session:
        found = await _group_and_requester(request, session, signer)
        if found is None or not await is_moderator(session, found[0].id, found[1].id):
            return json_error(404, "no such collection")
        return await _followers(request, session, found[0], "pending", "pendingFollowers")


def routes(router: web.UrlDispatcher) -> None:
    router.add_get("/c/{name}/members", members)
    router.add_get("/c/{name}/pendingFollowers", pending_followers)
