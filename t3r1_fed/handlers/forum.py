"""Forum collections of a cooperative, and hashtag collections.

- `{group}/discussions`: the cooperative's threads, most recent activity first (a new
  reply brings its thread back to the top). Paged by the id of the thread's latest
  object, which is unique per thread.
- `{group}/discussions/{thread}`: a thread's FEP-7888 context, owned by the group
  (`attributedTo`), listing the root then every reply in arrival order (FEP-f228
  backfill). Removed and deleted objects leave it; in a public cooperative only public
  and unlisted replies are listed.
- `/tags/{tag}`: our public posts with that hashtag (what Mastodon serves there too).
Private cooperatives answer 404 unless the signed requester may read (coops/access.py).
"""

from __future__ import annotations

import html
from typing import Any

from aiohttp import web
from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from t3r1_fed.actors.documents import register_group_collection
from t3r1_fed.appkeys import CTX
from t3r1_fed.coops.access import can_read
from t3r1_fed.coops.forum import DISCUSSIONS, context_url
from t3r1_fed.coops.news import tag_url
from t3r1_fed.db.models import Actor, Coop, Object
from t3r1_fed.db.models_coops import ObjectTag
from t3r1_fed.federation.verifier import signed_requester
from t3r1_fed.handlers.activitypub import (
    PAGE_SIZE,
    _actor_for,
    _collection,
    _html_page,
    _page,
    _paged,
)
from t3r1_fed.httputil import as2_response, json_error, wants_as2
from t3r1_fed.vocab.markup import normalize_tag

register_group_collection(DISCUSSIONS)

PUBLIC_VISIBILITIES = ("public", "unlisted")


async def _readable_group(request: web.Request, session: AsyncSession) -> tuple[Actor, Coop]:
    group, coop = await _actor_for(request, session)
    if coop is None:
        raise web.HTTPNotFound()
    if coop.private:
        requester = await signed_requester(request.app[CTX], request)
        if not await can_read(session, group, coop, requester):
            raise web.HTTPNotFound()
    return group, coop


def _listed(obj: Any, coop: Coop) -> ColumnElement[bool]:
    """Objects of a cooperative that its collections show."""
    visible = obj.visibility != "direct" if coop.private else obj.visibility.in_(
        PUBLIC_VISIBILITIES
    )
    return and_(obj.deleted_at.is_(None), obj.removed_at.is_(None), visible)


async def discussions(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    async with ctx.sessions() as session:
        group, coop = await _readable_group(request, session)
        reply = aliased(Object)
        latest = (
            select(func.max(reply.id))
            .where(reply.thread_id == Object.id, reply.group_id == group.id, _listed(reply, coop))
            .correlate(Object)
            .scalar_subquery()
        )
        activity = func.coalesce(latest, Object.id)
        where = (
            Object.group_id == group.id,
            Object.kind == "thread",
            Object.thread_id.is_(None),
            _listed(Object, coop),
        )
        return await _paged(
            request,
            session,
            ctx.uris.sub(group.uri, DISCUSSIONS),
            select(func.count()).select_from(Object).where(*where),
            select(activity, Object.uri).where(*where),
            activity,
            lambda r: r[1],
        )


async def context_collection(request: web.Request) -> web.Response:
    """A thread's context: root first, then replies (ascending, `min_id` paging)."""
    ctx = request.app[CTX]
    async with ctx.sessions() as session:
        group, coop = await _readable_group(request, session)
        oid = request.match_info["oid"]
        uri = context_url(ctx, group, oid)
        root = (
            await session.execute(
                select(Object).where(
                    Object.uri == ctx.uris.object(oid),
                    Object.group_id == group.id,
                    Object.context == uri,
                    _listed(Object, coop),
                )
            )
        ).scalar()
        if root is None:
            return json_error(404, "no such discussion")
        where = (
            or_(Object.id == root.id, Object.thread_id == root.id),
            Object.group_id == group.id,
            _listed(Object, coop),
        )
        total = (
            await session.execute(select(func.count()).select_from(Object).where(*where))
        ).scalar_one()
        if request.query.get("page") != "true":
            doc = _collection(uri, total, f"{uri}?page=true")
            doc.update({"attributedTo": group.uri, "audience": group.uri})
            return as2_response(doc)
        q = select(Object.id, Object.uri).where(*where)
        min_id = request.query.get("min_id", "")
        if min_id.isdigit():
            q = q.where(Object.id > int(min_id))
        rows = list((await session.execute(q.order_by(Object.id).limit(PAGE_SIZE))).all())
    next_url = f"{uri}?page=true&min_id={rows[-1][0]}" if len(rows) == PAGE_SIZE else None
    page_uri = f"{uri}?page=true" + (f"&min_id={min_id}" if min_id.isdigit() else "")
    page = _page(page_uri, uri, [r[1] for r in rows], next_url)
    page["attributedTo"] = group.uri
    return as2_response(page)


async def tag_collection(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    tag = normalize_tag(request.match_info["tag"])
    if tag is None:
        return json_error(404, "no such hashtag")
    async with ctx.sessions() as session:
        where = (
            ObjectTag.tag == tag,
            Object.local.is_(True),
            Object.visibility == "public",
            Object.deleted_at.is_(None),
            Object.removed_at.is_(None),
        )
        joined = select(Object.id, Object.uri).join(ObjectTag, ObjectTag.object_id == Object.id)
        if "text/html" in request.headers.get("Accept", "") and not wants_as2(request):
            # A hashtag link clicked in Mastodon opens here: a small French page.
            rows = await session.execute(joined.where(*where).order_by(Object.id.desc())
                                         .limit(PAGE_SIZE))
            links = "".join(
                f'<li><a href="{html.escape(r[1])}">{html.escape(r[1])}</a></li>' for r in rows
            )
            return _html_page(f"#{tag}", f"<h1>#{html.escape(tag)}</h1>"
                              f"<p>Publications récentes</p><ul>{links}</ul>")
        count = (
            select(func.count())
            .select_from(Object)
            .join(ObjectTag, ObjectTag.object_id == Object.id)
            .where(*where)
        )
        return await _paged(
            request, session, tag_url(ctx, tag), count, joined.where(*where), Object.id,
            lambda r: r[1],
        )


def routes(router: web.UrlDispatcher) -> None:
    router.add_get(f"/c/{{name}}/{DISCUSSIONS}", discussions)
    router.add_get(f"/c/{{name}}/{DISCUSSIONS}/{{oid}}", context_collection)
    router.add_get("/tags/{tag}", tag_collection)
