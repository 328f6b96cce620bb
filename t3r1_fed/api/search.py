"""Mastodon client API, search: `GET /api/v2/search` and `GET /api/v1/accounts/search`.

Accounts are matched by username (prefix) and display name (substring), local and known
remote ones. With `resolve=true` (a user token is required, as Mastodon) a query such as
`@coop@other.host`, `coop@other.host` or an actor URL is resolved through WebFinger and the
actor resolver, so a member finds a cooperative of another instance; a status URL is
fetched and stored through the inbox's object ingestion. Statuses are only ever returned if
the viewer may see them; a free-text status search covers the public and unlisted statuses
(and the viewer's own) known to this instance. Hashtags come from `object_tags`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from multidict import MultiMapping
from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.follows import resolve_target
from t3r1_fed.actors.local import ActorError
from t3r1_fed.api import entities, statuses_view
from t3r1_fed.api.accounts import find_by_acct
from t3r1_fed.api.routing import get
from t3r1_fed.api.viewer import Viewer, flag, int_param, optional_viewer, required_viewer
from t3r1_fed.appkeys import CTX
from t3r1_fed.context import Context
from t3r1_fed.db.models import Actor, Coop, Follow, Object
from t3r1_fed.db.models_coops import ObjectTag
from t3r1_fed.httputil import json_response
from t3r1_fed.inbox.objects import Refused, resolve_object
from t3r1_fed.oauth.auth import json_exc

TYPES = ("accounts", "statuses", "hashtags")
MAX_OFFSET = 10_000


def is_url(q: str) -> bool:
    return q.startswith(("https://", "http://")) and " " not in q


def is_acct(q: str) -> bool:
    """`name@host` or `@name@host`."""
    name, _, host = q.lstrip("@").partition("@")
    return bool(name) and bool(host) and " " not in q and "@" not in host


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def _resolve_actor(ctx: Context, session: AsyncSession, q: str) -> Actor | None:
    # No savepoint around the network: on SQLite it would open the write transaction
    # (and pin its snapshot) before the fetch; resolving writes only once fetched.
    try:
        actor = await resolve_target(ctx, session, q)
    except (ActorError, ValueError):
        return None
    return None if actor.deleted_at is not None else actor


async def search_accounts(
    ctx: Context, session: AsyncSession, viewer: Viewer | None, q: str, *,
    limit: int, offset: int, resolve: bool, following: bool,
) -> list[Actor]:
    q = q.strip()
    if not q:
        return []
    found: list[Actor]
    if is_url(q) or is_acct(q):
        if offset:
            return []
        actor: Actor | None
        if is_url(q):
            actor = (await session.execute(
                select(Actor).where(or_(Actor.uri == q, Actor.url == q),
                                    Actor.deleted_at.is_(None)).order_by(Actor.id).limit(1)
            )).scalar()
        else:
            actor = await find_by_acct(session, ctx.settings.domain, q)
        if actor is None and resolve and not ctx.uris.is_local(q):
            host = q.lstrip("@").partition("@")[2].lower()
            if is_url(q) or host != ctx.settings.domain.lower():
                actor = await _resolve_actor(ctx, session, q)
        found = [] if actor is None or actor.type == "Application" else [actor]
    else:
        term = q.lstrip("@").lower()
        prefix, inner = _like(term) + "%", "%" + _like(term) + "%"
        stmt = select(Actor).where(
            or_(func.lower(Actor.username).like(prefix, escape="\\"),
                func.lower(Actor.name).like(inner, escape="\\")),
            Actor.deleted_at.is_(None), Actor.type != "Application",
        )
        followed = select(Follow.followee_id).where(
            Follow.follower_id == (viewer.actor.id if viewer else -1),
            Follow.state == "accepted")
        if following and viewer is not None:
            stmt = stmt.where(Actor.id.in_(followed))
        # Private cooperatives stay out of the listing (as out of the directory) except for
        # their members; their exact address still finds them, for joining.
        private = select(Coop.actor_id).where(Coop.private.is_(True),
                                              Coop.actor_id.not_in(followed))
        stmt = stmt.where(Actor.id.not_in(private))
        exact = func.lower(Actor.username) == term
        stmt = stmt.order_by(exact.desc(), Actor.local.desc(), Actor.id)
        found = list((await session.execute(stmt.offset(offset).limit(limit))).scalars())
        return found
    if following and viewer is not None and found:
        ok = (await session.execute(select(Follow.id).where(
            Follow.follower_id == viewer.actor.id, Follow.followee_id == found[0].id,
            Follow.state == "accepted"))).first()
        found = found if ok else []
    return found


async def search_statuses(
    ctx: Context, session: AsyncSession, viewer: Viewer | None, q: str, *,
    limit: int, offset: int, resolve: bool, author: int | None = None,
    max_id: int | None = None, min_id: int | None = None,
) -> list[dict[str, Any]]:
    """Statuses for `q`; `author`, `max_id`, `min_id` are Mastodon's `account_id`,
    `max_id` and `min_id` filters."""
    q = q.strip()
    me = viewer.actor if viewer else None
    refs: list[statuses_view.StatusRef] = []
    if is_url(q):
        if offset:
            return []
        obj = (await session.execute(
            select(Object).where(or_(Object.uri == q, Object.url == q),
                                 Object.kind.in_(statuses_view.STATUS_KINDS))
            .order_by(Object.id).limit(1)
        )).scalar()
        if obj is None and resolve and not ctx.uris.is_local(q):
            try:
                obj = await resolve_object(ctx, session, q)
            except (Refused, ValueError):
                obj = None
        if (obj is not None and obj.kind in statuses_view.STATUS_KINDS
                and author in (None, obj.author_id)
                and (max_id is None or obj.sid < max_id)
                and (min_id is None or obj.sid > min_id)):
            refs = [statuses_view.ref_of_object(obj)]
    elif me is not None and q and not is_acct(q):
        # Free text: statuses the viewer may see (Mastodon needs a user for this too).
        stmt = (select(Object.sid, Object.id).where(
            func.lower(Object.content).like("%" + _like(q.lower()) + "%", escape="\\"),
            Object.kind.in_(statuses_view.STATUS_KINDS), Object.deleted_at.is_(None),
            Object.removed_at.is_(None), statuses_view.visible_filter(me.id),
        ).order_by(Object.sid.desc()).offset(offset).limit(limit))
        if author is not None:
            stmt = stmt.where(Object.author_id == author)
        if max_id is not None:
            stmt = stmt.where(Object.sid < max_id)
        if min_id is not None:
            stmt = stmt.where(Object.sid > min_id)
        refs = [statuses_view.StatusRef(int(sid), int(oid))
                for sid, oid in (await session.execute(stmt)).all()]
    return await statuses_view.render(ctx, session, me, refs)


def tag_entity(ctx: Context, name: str,
               history: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"name": name, "url": f"{ctx.settings.base_url}/tags/{name}",
            "history": history if history is not None else []}


HISTORY_DAYS = 7
MAX_HISTORY_ROWS = 20_000


async def tag_histories(
    session: AsyncSession, names: list[str], now: datetime | None = None
) -> dict[str, list[dict[str, str]]]:
    """Mastodon's Tag `history` of each tag: the last 7 days (today first), each day's
    public statuses (`uses`) and distinct authors (`accounts`); `day` is the UNIX time of
    the day's midnight (UTC), every value a string."""
    today = (now or datetime.now(UTC)).replace(hour=0, minute=0, second=0, microsecond=0)
    days = [today - timedelta(days=n) for n in range(HISTORY_DAYS)]
    uses: dict[tuple[str, int], int] = {}
    authors: dict[tuple[str, int], set[int]] = {}
    if names:
        rows = await session.execute(
            select(ObjectTag.tag, Object.published, Object.author_id)
            .join(Object, Object.id == ObjectTag.object_id)
            .where(ObjectTag.tag.in_(names), Object.published >= days[-1],
                   Object.deleted_at.is_(None), Object.removed_at.is_(None),
                   Object.visibility.in_(("public", "unlisted")))
            .limit(MAX_HISTORY_ROWS)
        )
        for tag, published, author in rows:
            day = (today - published.astimezone(UTC).replace(
                hour=0, minute=0, second=0, microsecond=0)).days
            if 0 <= day < HISTORY_DAYS:
                uses[(tag, day)] = uses.get((tag, day), 0) + 1
                authors.setdefault((tag, day), set()).add(author)
    return {name: [{"day": str(int(d.timestamp())), "uses": str(uses.get((name, n), 0)),
                    "accounts": str(len(authors.get((name, n), ())))}
                   for n, d in enumerate(days)] for name in names}


async def search_hashtags(
    ctx: Context, session: AsyncSession, viewer: Viewer | None, q: str, *,
    limit: int, offset: int,
) -> list[dict[str, Any]]:
    term = q.strip().lstrip("#").lower()
    if not term or is_url(q.strip()) or is_acct(q.strip()) or " " in term:
        return []
    uses = func.count(ObjectTag.object_id)
    stmt = (select(ObjectTag.tag, uses)
            .join(Object, Object.id == ObjectTag.object_id)
            .where(ObjectTag.tag.like(_like(term) + "%", escape="\\"),
                   Object.deleted_at.is_(None),
                   and_(statuses_view.visible_filter(viewer.actor.id if viewer else None)))
            .group_by(ObjectTag.tag)
            .order_by((ObjectTag.tag == term).desc(), uses.desc(), ObjectTag.tag)
            .offset(offset).limit(limit))
    out = []
    found = [tag for tag, _ in (await session.execute(stmt)).all()]
    histories = await tag_histories(session, found)
    for tag in found:
        doc = tag_entity(ctx, tag, histories[tag])
        if viewer is not None:
            doc["following"] = False
        out.append(doc)
    return out


def _opt_id(values: MultiMapping[str], name: str) -> int | None:
    raw = values.get(name, "").strip()
    if not raw:
        return None
    try:
        return max(0, min(int(raw), (1 << 63) - 1))
    except ValueError:
        raise json_exc(web.HTTPBadRequest, f"{name} must be an id") from None


def _query(values: MultiMapping[str]) -> str:
    q = values.get("q", "").strip()
    if not q:
        raise json_exc(web.HTTPBadRequest, "param is missing or the value is empty: q")
    return q[:512]


async def search_v2(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    values = request.query
    q = _query(values)
    kind = values.get("type", "").strip()
    if kind and kind not in TYPES:
        raise json_exc(web.HTTPBadRequest, "type must be accounts, statuses or hashtags")
    limit = int_param(values, "limit", 20, 1, 40)
    offset = int_param(values, "offset", 0, 0, MAX_OFFSET)
    resolve = bool(flag(values, "resolve", False))
    following = bool(flag(values, "following", False))
    async with ctx.sessions() as s, s.begin():
        viewer = await optional_viewer(request, s, "read:search")
        if viewer is None and resolve:
            raise json_exc(web.HTTPUnauthorized, "Search queries that resolve remote "
                           "resources are not supported without authentication")
        if viewer is None and offset:
            raise json_exc(web.HTTPUnauthorized, "Search queries with offset are not "
                           "supported without authentication")
        result: dict[str, Any] = {"accounts": [], "statuses": [], "hashtags": []}
        if kind in ("", "accounts"):
            actors = await search_accounts(ctx, s, viewer, q, limit=limit, offset=offset,
                                           resolve=resolve, following=following)
            result["accounts"] = await entities.account_list(s, ctx.settings, list(actors))
        if kind in ("", "statuses"):
            result["statuses"] = await search_statuses(
                ctx, s, viewer, q, limit=limit, offset=offset, resolve=resolve,
                author=_opt_id(values, "account_id"), max_id=_opt_id(values, "max_id"),
                min_id=_opt_id(values, "min_id"))
        if kind in ("", "hashtags"):
            result["hashtags"] = await search_hashtags(ctx, s, viewer, q, limit=limit,
                                                       offset=offset)
    return json_response(result)


async def accounts_search(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    values = request.query
    async with ctx.sessions() as s, s.begin():
        viewer = await required_viewer(request, s, "read:accounts")
        q = _query(values)
        actors = await search_accounts(
            ctx, s, viewer, q,
            limit=int_param(values, "limit", 40, 1, 80),
            offset=int_param(values, "offset", 0, 0, MAX_OFFSET),
            resolve=bool(flag(values, "resolve", False)),
            following=bool(flag(values, "following", False)),
        )
        docs = await entities.account_list(s, ctx.settings, list(actors))
    return json_response(docs)


def routes(router: web.UrlDispatcher) -> None:
    get(router, "/api/v2/search", search_v2)
    get(router, "/api/v1/accounts/search", accounts_search)
