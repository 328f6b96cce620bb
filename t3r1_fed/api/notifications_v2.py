"""Mastodon 4.3 grouped notifications (`/api/v2/notifications`).

Same rows, filters and visibility as v1 (api/notifications.py). A page holds at most
`limit` groups, each represented by its most recent notification in the page's range (as
Mastodon's `paginate_groups`): rows are read in batches, newest first (oldest first from
`min_id`), and a row whose group is already on the page is skipped. Group keys are
computed (notify/groups.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from aiohttp import web
from multidict import MultiMapping
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from t3r1_fed.api import entities
from t3r1_fed.api.notifications import READ, WITH_STATUS, WRITE, N, filters, standing
from t3r1_fed.api.pagination import Page, page_params, with_link
from t3r1_fed.api.routing import add, get
from t3r1_fed.api.statuses_view import StatusRef, render
from t3r1_fed.api.viewer import NOT_FOUND, Viewer, required_viewer
from t3r1_fed.appkeys import CTX
from t3r1_fed.context import Context
from t3r1_fed.db.models import Actor, Object
from t3r1_fed.db.models_api import Marker, Notification
from t3r1_fed.httputil import json_response
from t3r1_fed.notify.groups import GROUPABLE, ParsedKey, group_key, parse_group_key
from t3r1_fed.oauth.auth import json_exc

SAMPLE_ACCOUNTS: Final = 8
BATCHES: Final = 8  # rows read per page: at most BATCHES × 4 × limit
GROUP_ROWS: Final = 1000  # rows of one group read to count it (the count is capped there)


@dataclass(frozen=True)
class Row:
    n: Notification
    sid: int | None  # the status id of its object
    key: str


def grouped_types(query: MultiMapping[str]) -> frozenset[str]:
    asked = [*query.getall("grouped_types[]", []), *query.getall("grouped_types", [])]
    return frozenset(t for t in GROUPABLE if t in asked) if asked else frozenset(GROUPABLE)


async def _rows(
    session: AsyncSession, conds: Sequence[ColumnElement[bool]], page: Page,
    grouped: frozenset[str], limit: int,
) -> list[Row]:
    """One row per group, at most `limit` groups, newest first."""
    reps: dict[str, Row] = {}
    ascending = page.ascending
    cursor_lo = page.lower
    cursor_hi = page.max_id
    batch = limit * 4
    for _ in range(BATCHES):
        q = select(N, Object.sid).outerjoin(Object, Object.id == N.object_id).where(*conds)
        if cursor_hi is not None:
            q = q.where(N.id < cursor_hi)
        if cursor_lo is not None:
            q = q.where(N.id > cursor_lo)
        q = q.order_by(N.id.asc() if ascending else N.id.desc()).limit(batch)
        got = (await session.execute(q)).all()
        for n, sid in got:
            key = group_key(n.id, n.type, sid, n.created_at, grouped)
            if key not in reps:
                reps[key] = Row(n, sid, key)
                if len(reps) >= limit:
                    break
        if len(reps) >= limit or len(got) < batch:
            break
        if ascending:
            cursor_lo = got[-1][0].id
        else:
            cursor_hi = got[-1][0].id
    out = list(reps.values())
    return out[::-1] if ascending else out


def _key_match(key: ParsedKey, object_id: int | None) -> list[Any]:
    """The rows a group key names (any recipient)."""
    if key.notification_id is not None:
        return [N.id == key.notification_id]
    conds = [N.type == key.kind, N.created_at >= key.start, N.created_at < key.end]
    if key.status_id is not None:
        conds.append(N.object_id == object_id)
    return conds


def _key_conditions(recipient_id: int, key: ParsedKey, object_id: int | None) -> list[Any]:
    return [N.recipient_id == recipient_id, *standing(), *_key_match(key, object_id)]


async def _object_of_sid(session: AsyncSession, sid: int | None) -> int | None:
    if sid is None:
        return None
    return (await session.execute(select(Object.id).where(Object.sid == sid))).scalar()


@dataclass
class Group:
    row: Row
    count: int
    sample: list[int]
    most_recent: int
    page_min: int | None = None
    latest_at: str | None = None


async def _group(
    session: AsyncSession, recipient_id: int, row: Row, upper: int | None, lower: int | None,
) -> Group:
    """Counts and sample accounts of `row`'s group up to `upper` (the page's newest id)."""
    n = row.n
    key = parse_group_key(row.key)
    if key is None or key.notification_id is not None:
        return Group(row, 1, [n.from_actor_id], n.id, n.id if lower is not None else None,
                     entities.iso(n.created_at) if lower is not None else None)
    conds = _key_conditions(recipient_id, key, n.object_id)
    if upper is not None:
        conds.append(N.id <= upper)
    members: list[tuple[int, int, datetime]] = [(m[0], m[1], m[2]) for m in (await session.execute(
        select(N.id, N.from_actor_id, N.created_at).where(*conds)
        .order_by(N.id.desc()).limit(GROUP_ROWS)
    )).all()]
    if not members:
        members = [(n.id, n.from_actor_id, n.created_at)]
    g = Group(row, len(members), [m[1] for m in members[:SAMPLE_ACCOUNTS]], members[0][0])
    if lower is not None:
        g.page_min = min((m[0] for m in members if m[0] >= lower), default=n.id)
        g.latest_at = entities.iso(members[0][2])
    return g


async def render_groups(
    ctx: Context, session: AsyncSession, viewer: Viewer, groups: Sequence[Group],
) -> dict[str, Any]:
    """The GroupedNotificationsResults entity; groups about statuses the member may not
    see are left out."""
    refs = {g.row.n.object_id: StatusRef(g.row.sid, g.row.n.object_id)
            for g in groups if g.row.n.object_id is not None and g.row.sid is not None}
    statuses = {int(d["id"]): d for d in await render(ctx, session, viewer.actor,
                                                       list(refs.values()),
                                                       filter_context="notifications")}
    shown: list[dict[str, Any]] = []
    account_ids: dict[int, None] = {}
    for g in groups:
        n = g.row.n
        doc: dict[str, Any] = {
            "group_key": g.row.key,
            "notifications_count": g.count,
            "type": n.type,
            "most_recent_notification_id": str(g.most_recent),
        }
        if g.page_min is not None:
            doc["page_min_id"] = str(g.page_min)
            doc["page_max_id"] = str(g.most_recent)
            doc["latest_page_notification_at"] = g.latest_at
        doc["sample_account_ids"] = [str(a) for a in g.sample]
        if n.type in WITH_STATUS:
            if g.row.sid is None or g.row.sid not in statuses:
                continue
            doc["status_id"] = str(g.row.sid)
        shown.append(doc)
        account_ids.update(dict.fromkeys(g.sample))
    actors = list((await session.execute(
        select(Actor).where(Actor.id.in_(sorted(account_ids)))
    )).scalars()) if account_ids else []
    accounts = await entities.accounts(session, ctx.settings, actors)
    used = {int(d["status_id"]) for d in shown if "status_id" in d}
    return {
        "accounts": [accounts[a] for a in account_ids if a in accounts],
        "statuses": [statuses[s] for s in statuses if s in used],
        "notification_groups": shown,
    }


def _expand_accounts(query: MultiMapping[str]) -> None:
    value = query.get("expand_accounts")
    if value not in (None, "full", "partial_avatars"):
        raise json_exc(web.HTTPBadRequest, f"Invalid value for 'expand_accounts': '{value}', "
                       "allowed values are 'full' and 'partial_avatars'")


async def list_groups(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    _expand_accounts(request.query)  # partial_avatars: every account is sent in full
    page = page_params(request, default=40, maximum=80)
    async with ctx.sessions() as s:
        viewer = await required_viewer(request, s, READ)
        conds = filters(request, viewer.actor.id)
        rows = await _rows(s, conds, page, grouped_types(request.query), page.limit)
        upper = rows[0].n.id if rows else None
        lower = rows[-1].n.id if rows else None
        groups = [await _group(s, viewer.actor.id, r, upper, lower) for r in rows]
        doc = await render_groups(ctx, s, viewer, groups)
    return with_link(request, json_response(doc), [r.n.id for r in rows])


async def _group_rows(
    session: AsyncSession, viewer: Viewer, raw_key: str
) -> tuple[ParsedKey, list[Any]]:
    key = parse_group_key(raw_key)
    if key is None:
        raise json_exc(web.HTTPNotFound, NOT_FOUND)
    object_id = await _object_of_sid(session, key.status_id)
    if key.status_id is not None and object_id is None:
        raise json_exc(web.HTTPNotFound, NOT_FOUND)
    return key, _key_conditions(viewer.actor.id, key, object_id)


async def get_group(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    async with ctx.sessions() as s:
        viewer = await required_viewer(request, s, READ)
        _key, conds = await _group_rows(s, viewer, request.match_info["group_key"])
        found = (await s.execute(
            select(N, Object.sid).outerjoin(Object, Object.id == N.object_id)
            .where(*conds).order_by(N.id.desc()).limit(1)
        )).first()
        if found is None:
            raise json_exc(web.HTTPNotFound, NOT_FOUND)
        row = Row(found[0], found[1], request.match_info["group_key"])
        doc = await render_groups(ctx, s, viewer, [await _group(s, viewer.actor.id, row,
                                                                None, None)])
    if not doc["notification_groups"]:
        raise json_exc(web.HTTPNotFound, NOT_FOUND)
    return json_response(doc)


async def group_accounts(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    async with ctx.sessions() as s:
        viewer = await required_viewer(request, s, READ)
        _key, conds = await _group_rows(s, viewer, request.match_info["group_key"])
        ids = list((await s.execute(
            select(N.from_actor_id).where(*conds).order_by(N.id.desc()).limit(GROUP_ROWS)
        )).scalars())
        if not ids:
            raise json_exc(web.HTTPNotFound, NOT_FOUND)
        actors = list((await s.execute(select(Actor).where(Actor.id.in_(set(ids))))).scalars())
        accounts = await entities.accounts(s, ctx.settings, actors)
    return json_response([accounts[a] for a in dict.fromkeys(ids) if a in accounts])


async def dismiss_group(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    async with ctx.sessions() as s, s.begin():
        viewer = await required_viewer(request, s, WRITE)
        key = parse_group_key(request.match_info["group_key"])
        if key is not None:
            object_id = await _object_of_sid(s, key.status_id)
            await s.execute(delete(N).where(N.recipient_id == viewer.actor.id,
                                            *_key_match(key, object_id)))
    return json_response({})


async def unread_count(request: web.Request) -> web.Response:
    """Groups after the `notifications` marker, counted up to `limit` (default 100, at
    most 1000)."""
    ctx = request.app[CTX]
    raw = request.query.get("limit", "").strip()
    try:
        limit = min(abs(int(raw)) if raw else 100, 1000)
    except ValueError:
        raise json_exc(web.HTTPBadRequest, "limit must be a number") from None
    async with ctx.sessions() as s:
        viewer = await required_viewer(request, s, READ)
        marker = (await s.execute(
            select(Marker.last_read_id).where(
                Marker.user_id == viewer.user.id, Marker.timeline == "notifications"
            )
        )).scalar()
        since = int(marker.strip()) if marker is not None and marker.strip().isdigit() else 0
        page = Page(max_id=None, since_id=None, min_id=since, limit=max(limit, 1))
        conds = filters(request, viewer.actor.id)
        rows = await _rows(s, conds, page, grouped_types(request.query), limit) if limit else []
    return json_response({"count": len(rows)})


def routes(router: web.UrlDispatcher) -> None:
    get(router, "/api/v2/notifications", list_groups)
    get(router, "/api/v2/notifications/unread_count", unread_count)
    get(router, "/api/v2/notifications/{group_key}", get_group)
    get(router, "/api/v2/notifications/{group_key}/accounts", group_accounts)
    add(router, "POST", "/api/v2/notifications/{group_key}/dismiss", dismiss_group)
