"""Timelines: home (the unified feed), public, hashtag, list.

The home timeline is one feed for a member active in several structures: the posts
cooperatives they follow redistribute (local or on other instances — a redistribution is a
boost by the group), the posts of accounts they follow, and their own posts and boosts.
A post boosted by several cooperatives appears once, at its newest boost.

Entries are read per followed account through the `(author_id, sid)` and `(actor_id, sid)`
indexes — on PostgreSQL with one LATERAL subquery per account, so the cost grows with the
page size and the number of follows, not with the size of the tables (bench/timeline.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy import and_, exists, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from t3r1_fed.api import pagination
from t3r1_fed.api.pagination import Page
from t3r1_fed.api.routing import get
from t3r1_fed.api.statuses_view import STATUS_KINDS, StatusRef, render
from t3r1_fed.appkeys import CTX
from t3r1_fed.context import Context
from t3r1_fed.db.models import Actor, Follow, Object, Share, User
from t3r1_fed.db.models_coops import Media, ObjectTag
from t3r1_fed.httputil import json_response
from t3r1_fed.oauth.auth import authenticate, json_exc, require_scope

# Candidates read per round: more than a page, since duplicates and hidden posts drop out.
OVERSAMPLE = 2
MAX_ROUNDS = 4
# PostgreSQL: one LATERAL subquery per followed account (bench/timeline.py decides).
LATERAL = True


@dataclass(frozen=True)
class Feed:
    """Whose posts and whose boosts make a member's home feed."""

    viewer_id: int
    authors: tuple[int, ...]  # accounts followed, and the member
    boosters: tuple[int, ...]  # the same, minus follows with `reblogs: false`


async def home_feed(session: AsyncSession, viewer_id: int) -> tuple[Feed, frozenset[int]]:
    rows = (await session.execute(
        select(Follow.followee_id, Follow.show_reblogs)
        .where(Follow.follower_id == viewer_id, Follow.state == "accepted")
    )).all()
    following = frozenset(r[0] for r in rows)
    authors = (viewer_id, *sorted(following))
    boosters = (viewer_id, *sorted(r[0] for r in rows if r[1]))
    return Feed(viewer_id, authors, boosters), following


def _bounds(page: Page, upper: int | None) -> tuple[int, int]:
    hi = pagination.MAX_ID if upper is None else upper
    lo = page.lower if page.lower is not None else 0
    return lo, hi


_PG_HOME = text("""
SELECT t.sid, t.object_id, t.share_id FROM (
  SELECT o.sid, o.id AS object_id, CAST(NULL AS BIGINT) AS share_id
  FROM unnest(CAST(:authors AS BIGINT[])) AS a(id)
  CROSS JOIN LATERAL (
    SELECT o.sid, o.id FROM objects o
    WHERE o.author_id = a.id AND o.sid > :lo AND o.sid < :hi
      AND o.in_reply_to IS NULL AND o.deleted_at IS NULL AND o.removed_at IS NULL
      AND o.kind IN ('post', 'thread', 'reply', 'event', 'poll')
      AND (o.visibility <> 'direct' OR o.author_id = :viewer)
    ORDER BY o.sid {order} LIMIT :n) o
  UNION ALL
  SELECT s.sid, s.object_id, s.id AS share_id
  FROM unnest(CAST(:boosters AS BIGINT[])) AS b(id)
  CROSS JOIN LATERAL (
    SELECT s.sid, s.object_id, s.id FROM shares s
    WHERE s.actor_id = b.id AND s.sid > :lo AND s.sid < :hi
    ORDER BY s.sid {order} LIMIT :n) s
) t ORDER BY t.sid {order} LIMIT :n
""")


async def _candidates(
    session: AsyncSession, feed: Feed, lo: int, hi: int, n: int, ascending: bool
) -> list[StatusRef]:
    order = "ASC" if ascending else "DESC"
    if LATERAL and session.get_bind().dialect.name == "postgresql":
        stmt = text(_PG_HOME.text.replace("{order}", order))
        rows = (await session.execute(stmt, {
            "authors": list(feed.authors), "boosters": list(feed.boosters),
            "lo": lo, "hi": hi, "n": n, "viewer": feed.viewer_id,
        })).all()
        return [StatusRef(sid, oid, shid) for sid, oid, shid in rows]
    objs = (
        select(Object.sid, Object.id)
        .where(
            Object.author_id.in_(feed.authors), Object.sid > lo, Object.sid < hi,
            Object.in_reply_to.is_(None), Object.deleted_at.is_(None),
            Object.removed_at.is_(None), Object.kind.in_(STATUS_KINDS),
            or_(Object.visibility != "direct", Object.author_id == feed.viewer_id),
        )
        .order_by(Object.sid.asc() if ascending else Object.sid.desc()).limit(n)
    )
    boosts = (
        select(Share.sid, Share.object_id, Share.id)
        .where(Share.actor_id.in_(feed.boosters), Share.sid > lo, Share.sid < hi)
        .order_by(Share.sid.asc() if ascending else Share.sid.desc()).limit(n)
    )
    out = [StatusRef(sid, oid, None) for sid, oid in (await session.execute(objs))]
    out += [StatusRef(sid, oid, shid) for sid, oid, shid in (await session.execute(boosts))]
    out.sort(key=lambda r: r.sid, reverse=not ascending)
    return out[:n]


async def _newest_boosts(
    session: AsyncSession, feed: Feed, object_ids: Sequence[int]
) -> dict[int, int]:
    """For each object, the id of its newest boost in the feed."""
    if not object_ids:
        return {}
    rows = await session.execute(
        select(Share.object_id, func.max(Share.sid))
        .where(Share.object_id.in_(list(object_ids)), Share.actor_id.in_(feed.boosters))
        .group_by(Share.object_id)
    )
    return {oid: sid for oid, sid in rows}


async def home_refs(session: AsyncSession, feed: Feed, page: Page) -> list[StatusRef]:
    """One page of the unified feed, newest first, each post once (at its newest entry)."""
    ascending = page.ascending
    lo, hi = _bounds(page, page.max_id)
    out: list[StatusRef] = []
    seen: set[int] = set()
    n = page.limit * OVERSAMPLE
    for _ in range(MAX_ROUNDS):
        batch = await _candidates(session, feed, lo, hi, n, ascending)
        newest = await _newest_boosts(session, feed, [r.object_id for r in batch])
        for ref in batch:
            if ref.object_id in seen or ref.sid < newest.get(ref.object_id, 0):
                continue
            seen.add(ref.object_id)
            out.append(ref)
            if len(out) == page.limit:
                break
        if len(out) >= page.limit or len(batch) < n:
            break
        if ascending:
            lo = batch[-1].sid
        else:
            hi = batch[-1].sid
    if ascending:
        out.reverse()
    return out


async def _viewer(session: AsyncSession, user_id: int) -> Actor:
    actor = (await session.execute(
        select(Actor).join(User, User.actor_id == Actor.id).where(User.id == user_id)
    )).scalar()
    if actor is None:
        raise json_exc(web.HTTPUnauthorized, "The access token is invalid")
    return actor


def _respond(request: web.Request, docs: list[dict[str, object]],
             refs: Sequence[StatusRef]) -> web.Response:
    ids = [r.sid for r in refs]
    return pagination.with_link(request, json_response(docs), ids)


async def home(request: web.Request) -> web.Response:
    info = await require_scope(request, "read:statuses")
    assert info.user_id is not None
    ctx: Context = request.app[CTX]
    page = pagination.page_params(request)
    async with ctx.sessions() as s:
        viewer = await _viewer(s, info.user_id)
        feed, following = await home_feed(s, viewer.id)
        refs = await home_refs(s, feed, page)
        docs = await render(ctx, s, viewer, refs, following=following, filter_context="home")
    return _respond(request, docs, refs)


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in {"1", "true", "on", "yes"}


async def _listing(
    request: web.Request, *, tag_filter: object | None = None,
    authors: Sequence[int] | None = None,
) -> web.Response:
    """Public statuses (optionally by hashtag or by authors), newest first, paginated."""
    ctx: Context = request.app[CTX]
    info = await authenticate(request)
    page = pagination.page_params(request)
    conds = [
        Object.visibility == "public", Object.deleted_at.is_(None),
        Object.removed_at.is_(None), Object.kind.in_(STATUS_KINDS),
        Object.in_reply_to.is_(None),
    ]
    if _flag(request, "local"):
        conds.append(Object.local.is_(True))
    elif _flag(request, "remote"):
        conds.append(Object.local.is_(False))
    if _flag(request, "only_media"):
        conds.append(exists().where(Media.object_id == Object.id))
    if tag_filter is not None:
        conds.append(tag_filter)  # type: ignore[arg-type]
    if authors is not None:
        conds.append(Object.author_id.in_(list(authors)))
    if page.lower is not None:
        conds.append(Object.sid > page.lower)
    if page.max_id is not None:
        conds.append(Object.sid < page.max_id)
    order = Object.sid.asc() if page.ascending else Object.sid.desc()
    async with ctx.sessions() as s:
        viewer = await _viewer(s, info.user_id) if info and info.user_id else None
        rows = (await s.execute(
            select(Object.sid, Object.id).where(and_(*conds)).order_by(order).limit(page.limit)
        )).all()
        refs = [StatusRef(sid, oid) for sid, oid in rows]
        if page.ascending:
            refs.reverse()
        docs = await render(ctx, s, viewer, refs, filter_context="public")
    return _respond(request, docs, refs)


async def public(request: web.Request) -> web.Response:
    return await _listing(request)


def _tag_names(request: web.Request, name: str) -> list[str]:
    return [t.lstrip("#").lower() for t in request.query.getall(name, []) if t.strip()]


async def tag(request: web.Request) -> web.Response:
    main = request.match_info["hashtag"].lstrip("#").lower()
    any_of = [main, *_tag_names(request, "any[]")]
    cond: ColumnElement[bool] = exists().where(
        ObjectTag.object_id == Object.id, ObjectTag.tag.in_(any_of)
    )
    for t in _tag_names(request, "all[]"):
        cond = and_(cond, exists().where(ObjectTag.object_id == Object.id, ObjectTag.tag == t))
    none = _tag_names(request, "none[]")
    if none:
        cond = and_(cond, ~exists().where(
            ObjectTag.object_id == Object.id, ObjectTag.tag.in_(none)
        ))
    return await _listing(request, tag_filter=cond)


async def list_timeline(request: web.Request) -> web.Response:
    """The home feed restricted to a list's accounts."""
    from t3r1_fed.api.lists import list_member_ids  # lists are an optional feature module

    info = await require_scope(request, "read:lists")
    assert info.user_id is not None
    ctx: Context = request.app[CTX]
    page = pagination.page_params(request)
    try:
        list_id = int(request.match_info["list_id"])
    except ValueError:
        raise json_exc(web.HTTPNotFound, "Record not found") from None
    async with ctx.sessions() as s:
        members = await list_member_ids(s, info.user_id, list_id)
        if members is None:
            raise json_exc(web.HTTPNotFound, "Record not found")
        viewer = await _viewer(s, info.user_id)
        feed, following = await home_feed(s, viewer.id)
        allowed = set(members) & set(following)
        scoped = Feed(viewer.id, tuple(a for a in feed.authors if a in allowed),
                      tuple(a for a in feed.boosters if a in allowed))
        refs = await home_refs(s, scoped, page) if allowed else []
        docs = await render(ctx, s, viewer, refs, following=following, filter_context="home")
    return _respond(request, docs, refs)


def routes(router: web.UrlDispatcher) -> None:
    get(router, "/api/v1/timelines/home", home)
    get(router, "/api/v1/timelines/public", public)
    get(router, "/api/v1/timelines/tag/{hashtag}", tag)
    get(router, "/api/v1/timelines/list/{list_id}", list_timeline)

