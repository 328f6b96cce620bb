"""Mastodon client API, follow requests: `GET /api/v1/follow_requests`, and
`POST /api/v1/follow_requests/:account_id/authorize|reject`.

A user sees the pending follows of their own (locked) account and the pending membership
requests of every local cooperative where they are admin or moderator. Mastodon names a
request by the requesting account only; when one account waits on several of these
(the user and two cooperatives, say), it is listed once and each authorize/reject decides
the oldest of its pending requests — call again for the next one. Cooperative requests go
through `coops.membership.approve` / `reject`, which send the Accept / Reject.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.local import ActorError
from t3r1_fed.api import entities, relationships
from t3r1_fed.api.pagination import page_params, with_link
from t3r1_fed.api.routing import add, get
from t3r1_fed.api.viewer import NOT_FOUND, Viewer, account_id, required_viewer
from t3r1_fed.appkeys import CTX
from t3r1_fed.coops import membership
from t3r1_fed.coops.roles import STAFF
from t3r1_fed.db.models import Actor, Coop, CoopRole, Follow
from t3r1_fed.httputil import json_response
from t3r1_fed.oauth.auth import json_exc


def _targets(viewer: Viewer) -> list[ColumnElement[bool]]:
    """Conditions on Follow.followee_id: the user's account or a cooperative they moderate."""
    moderated = (select(CoopRole.coop_actor_id)
                 .join(Coop, Coop.actor_id == CoopRole.coop_actor_id)
                 .where(CoopRole.actor_id == viewer.actor.id, CoopRole.role.in_(STAFF)))
    return [(Follow.followee_id == viewer.actor.id) | Follow.followee_id.in_(moderated)]


async def index(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    page = page_params(request, default=40, maximum=80)
    async with ctx.sessions() as s:
        viewer = await required_viewer(request, s, "read:follows")
        # One row per requester, keyed by its oldest request (the one decided first).
        firsts = (select(Follow.follower_id.label("actor_id"), func.min(Follow.id).label("fid"))
                  .where(Follow.state == "pending", *_targets(viewer))
                  .group_by(Follow.follower_id).subquery())
        q = (select(firsts.c.fid, Actor).join(Actor, Actor.id == firsts.c.actor_id)
             .where(Actor.deleted_at.is_(None)))
        if page.max_id is not None:
            q = q.where(firsts.c.fid < page.max_id)
        if page.lower is not None:
            q = q.where(firsts.c.fid > page.lower)
        q = q.order_by(firsts.c.fid.asc() if page.ascending else firsts.c.fid.desc())
        rows = list((await s.execute(q.limit(page.limit))).all())
        if page.ascending:
            rows.reverse()
        docs = await entities.account_list(s, ctx.settings, [a for _, a in rows])
    return with_link(request, json_response(docs), [fid for fid, _ in rows])


async def _oldest(session: AsyncSession, viewer: Viewer, requester: int) -> tuple[Follow, Actor]:
    row = (await session.execute(
        select(Follow, Actor).join(Actor, Actor.id == Follow.followee_id)
        .where(Follow.follower_id == requester, Follow.state == "pending", *_targets(viewer))
        .order_by(Follow.id).limit(1)
    )).first()
    if row is None:
        raise json_exc(web.HTTPNotFound, NOT_FOUND)
    return row[0], row[1]


async def _decide(request: web.Request, *, accept: bool) -> web.Response:
    ctx = request.app[CTX]
    async with ctx.sessions() as s, s.begin():
        viewer = await required_viewer(request, s, "write:follows")
        requester = (await s.execute(
            select(Actor).where(Actor.id == account_id(request)))).scalar()
        if requester is None:
            raise json_exc(web.HTTPNotFound, NOT_FOUND)
        follow, target = await _oldest(s, viewer, requester.id)
        try:
            if target.id != viewer.actor.id:
                if accept:
                    await membership.approve(ctx, s, viewer.actor, target, requester)
                else:
                    await membership.reject(ctx, s, viewer.actor, target, requester)
            else:
                if accept:
                    follow.state = "accepted"
                else:
                    await s.delete(follow)
                await membership.answer_request(ctx, s, viewer.actor, requester, follow,
                                                "Accept" if accept else "Reject")
        except ActorError as e:
            raise json_exc(web.HTTPUnprocessableEntity, str(e)) from None
        await s.flush()
        doc = await relationships.relationship(s, viewer.actor, requester)
    return json_response(doc)


async def authorize(request: web.Request) -> web.Response:
    return await _decide(request, accept=True)


async def reject(request: web.Request) -> web.Response:
    return await _decide(request, accept=False)


def routes(router: web.UrlDispatcher) -> None:
    get(router, "/api/v1/follow_requests", index)
    add(router, "POST", r"/api/v1/follow_requests/{id:\d+}/authorize", authorize)
    add(router, "POST", r"/api/v1/follow_requests/{id:\d+}/reject", reject)
