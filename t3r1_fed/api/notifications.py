"""Mastodon client API, notifications (v1): list, one, dismiss, clear, unread count.

Rows are written by notify/events.py whatever the path that stored the content. Reading
filters out what no longer stands: notifications about a deleted or removed object, from
a deleted account, favourites and boosts undone, follows gone, follow requests answered;
and statuses the member may not see (api/statuses_view.py) are dropped at rendering.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from aiohttp import web
from multidict import MultiMapping
from sqlalchemy import and_, delete, exists, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from t3r1_fed.api import entities
from t3r1_fed.api.pagination import Page, page_params, with_link
from t3r1_fed.api.routing import add, get
from t3r1_fed.api.statuses_view import StatusRef, render
from t3r1_fed.api.viewer import NOT_FOUND, Viewer, required_viewer
from t3r1_fed.appkeys import CTX
from t3r1_fed.context import Context
from t3r1_fed.db.models import Actor, Follow, Like, Object, Share
from t3r1_fed.db.models_api import Marker, Notification
from t3r1_fed.httputil import json_response
from t3r1_fed.notify.groups import group_key
from t3r1_fed.oauth.auth import json_exc

READ: Final = "read:notifications"
WRITE: Final = "write:notifications"
TYPES: Final = (
    "mention", "status", "reblog", "follow", "follow_request", "favourite", "poll", "update",
)
WITH_STATUS: Final = frozenset({"mention", "status", "reblog", "favourite", "poll", "update"})
N = Notification


# ---- what is still standing ---------------------------------------------------------------


def standing() -> list[ColumnElement[bool]]:
    """Conditions of a notification still worth showing."""
    o = aliased(Object)  # callers may join Object themselves (api/notifications_v2.py)
    live_object = exists().where(
        o.id == N.object_id, o.deleted_at.is_(None), o.removed_at.is_(None)
    )
    live_actor = exists().where(Actor.id == N.from_actor_id, Actor.deleted_at.is_(None))
    like = exists().where(Like.actor_id == N.from_actor_id, Like.object_id == N.object_id)
    share = exists().where(Share.actor_id == N.from_actor_id, Share.object_id == N.object_id)
    followed = exists().where(
        Follow.follower_id == N.from_actor_id, Follow.followee_id == N.recipient_id,
        Follow.state == "accepted",
    )
    requested = exists().where(
        Follow.follower_id == N.from_actor_id,
        Follow.followee_id == func.coalesce(N.group_id, N.recipient_id),
        Follow.state == "pending",
    )
    return [
        live_actor,
        or_(N.object_id.is_(None), live_object),
        or_(N.type != "favourite", like),
        or_(N.type != "reblog", share),
        or_(N.type != "follow", followed),
        or_(N.type != "follow_request", requested),
    ]


def requested_types(query: MultiMapping[str]) -> list[str]:
    """Mastodon's `types[]` minus `exclude_types[]` (unknown names ignored; `types[]` with
    only unknown names selects nothing)."""
    asked = [*query.getall("types[]", []), *query.getall("types", [])]
    excluded = {*query.getall("exclude_types[]", []), *query.getall("exclude_types", [])}
    base = [t for t in TYPES if t in asked] if asked else list(TYPES)
    return [t for t in base if t not in excluded]


def filters(request: web.Request, recipient_id: int) -> list[ColumnElement[bool]]:
    conds = [N.recipient_id == recipient_id, N.type.in_(requested_types(request.query)),
             *standing()]
    account = request.query.get("account_id", "").strip()
    if account:
        try:
            value = int(account)
        except ValueError:
            value = 0
        # An id no account has gives an empty list (as Mastodon), never an error.
        conds.append(N.from_actor_id == value if 0 < value < (1 << 63) else false())
    return conds


async def page_rows(
    session: AsyncSession, conds: Sequence[ColumnElement[bool]], page: Page
) -> list[Notification]:
    q = select(N).where(*conds)
    if page.max_id is not None:
        q = q.where(N.id < page.max_id)
    if page.lower is not None:
        q = q.where(N.id > page.lower)
    order = N.id.asc() if page.ascending else N.id.desc()
    rows = list((await session.execute(q.order_by(order).limit(page.limit))).scalars())
    return rows[::-1] if page.ascending else rows


# ---- rendering ----------------------------------------------------------------------------


async def render_all(
    ctx: Context, session: AsyncSession, viewer: Viewer, rows: Sequence[Notification]
) -> list[dict[str, Any]]:
    """Notification entities, newest first as given; those whose status the member may not
    see (or that no longer renders) are left out."""
    if not rows:
        return []
    actor_ids = sorted({n.from_actor_id for n in rows})
    actors = list((await session.execute(select(Actor).where(Actor.id.in_(actor_ids))))
                  .scalars())
    accounts = await entities.accounts(session, ctx.settings, actors)
    object_ids = sorted({n.object_id for n in rows if n.object_id is not None})
    sids: dict[int, int] = {}
    if object_ids:
        sids = {oid: sid for oid, sid in (await session.execute(
            select(Object.id, Object.sid).where(Object.id.in_(object_ids))
        ))}
    refs = [StatusRef(sids[oid], oid) for oid in object_ids if oid in sids]
    statuses = {int(doc["id"]): doc for doc in await render(
        ctx, session, viewer.actor, refs, filter_context="notifications")}
    out: list[dict[str, Any]] = []
    for n in rows:
        account = accounts.get(n.from_actor_id)
        if account is None:
            continue
        doc: dict[str, Any] = {
            "id": str(n.id),
            "type": n.type,
            "created_at": entities.iso(n.created_at),
            "group_key": group_key(n.id, n.type, sids.get(n.object_id or 0), n.created_at),
            "account": account,
        }
        if n.type in WITH_STATUS:
            status = statuses.get(sids.get(n.object_id or 0, 0))
            if status is None:
                continue
            doc["status"] = status
        out.append(doc)
    return out


# ---- handlers -----------------------------------------------------------------------------


async def list_notifications(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    page = page_params(request, default=40, maximum=80)
    async with ctx.sessions() as s:
        viewer = await required_viewer(request, s, READ)
        rows = await page_rows(s, filters(request, viewer.actor.id), page)
        docs = await render_all(ctx, s, viewer, rows)
    # The links follow the rows read, shown or not, so a client never loops on a page.
    return with_link(request, json_response(docs), [n.id for n in rows])


def _notification_id(request: web.Request) -> int:
    try:
        value = int(request.match_info["id"])
    except (KeyError, ValueError):
        raise json_exc(web.HTTPNotFound, NOT_FOUND) from None
    if not 0 < value < (1 << 63):
        raise json_exc(web.HTTPNotFound, NOT_FOUND)
    return value


async def get_notification(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    nid = _notification_id(request)
    async with ctx.sessions() as s:
        viewer = await required_viewer(request, s, READ)
        row = (await s.execute(
            select(N).where(N.id == nid, N.recipient_id == viewer.actor.id, *standing())
        )).scalar()
        docs = await render_all(ctx, s, viewer, [row] if row is not None else [])
    if not docs:
        raise json_exc(web.HTTPNotFound, NOT_FOUND)
    return json_response(docs[0])


async def dismiss(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    nid = _notification_id(request)
    async with ctx.sessions() as s, s.begin():
        viewer = await required_viewer(request, s, WRITE)
        gone = await s.execute(
            delete(N).where(N.id == nid, N.recipient_id == viewer.actor.id).returning(N.id)
        )
        if gone.first() is None:
            raise json_exc(web.HTTPNotFound, NOT_FOUND)
    return json_response({})


async def clear(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    async with ctx.sessions() as s, s.begin():
        viewer = await required_viewer(request, s, WRITE)
        await s.execute(delete(N).where(N.recipient_id == viewer.actor.id))
    return json_response({})


async def unread_count(request: web.Request) -> web.Response:
    """Mastodon 4.3: notifications after the `notifications` marker (all of them without
    one), counted up to `limit` (default 100, at most 1000)."""
    ctx = request.app[CTX]
    raw = request.query.get("limit", "").strip()
    try:
        limit = min(abs(int(raw)) if raw else 100, 1000)  # Rails: `to_i.abs`
    except ValueError:
        raise json_exc(web.HTTPBadRequest, "limit must be a number") from None
    async with ctx.sessions() as s:
        viewer = await required_viewer(request, s, READ)
        conds = filters(request, viewer.actor.id)
        marker = (await s.execute(
            select(Marker.last_read_id).where(
                Marker.user_id == viewer.user.id, Marker.timeline == "notifications"
            )
        )).scalar()
        if marker is not None and marker.strip().isdigit():
            conds.append(N.id > int(marker.strip()))
        inner = select(N.id).where(and_(*conds)).limit(limit).subquery()
        count = (await s.execute(select(func.count()).select_from(inner))).scalar_one()
    return json_response({"count": int(count)})


def routes(router: web.UrlDispatcher) -> None:
    get(router, "/api/v1/notifications", list_notifications)
    get(router, "/api/v1/notifications/unread_count", unread_count)
    get(router, r"/api/v1/notifications/{id:\d+}", get_notification)
    add(router, "POST", "/api/v1/notifications/clear", clear)
    add(router, "POST", r"/api/v1/notifications/{id:\d+}/dismiss", dismiss)
