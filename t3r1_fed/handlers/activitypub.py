"""Actor documents, objects, activities and collections, served at their ids.

Browsers asking for HTML at an actor or object URL get a small French page; everything
else gets ActivityStreams JSON. Collections are paged `OrderedCollection`s (keyset paging
on the row id, newest first).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import orjson
from aiohttp import web
from sqlalchemy import Select, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.documents import actor_document
from t3r1_fed.appkeys import CTX
from t3r1_fed.context import Context
from t3r1_fed.coops.access import activity_coop, object_coop, request_can_read
from t3r1_fed.db.models import Activity, Actor, Coop, CoopRole, Follow, Object
from t3r1_fed.federation.hosts import host_of
from t3r1_fed.federation.verifier import signed_requester
from t3r1_fed.httputil import as2_response, json_error, wants_as2
from t3r1_fed.vocab.context import AS_CONTEXT

PAGE_SIZE = 20
# Activities of a private cooperative that its readers may fetch; membership and
# moderation exchanges (Accept, Reject, Invite, Block, Flag …) stay between their parties.
MEMBERS_ONLY_PRIVATE = frozenset({"Accept", "Reject", "Invite", "Follow", "Join", "Leave",
                                  "Block", "Flag", "TentativeAccept", "TentativeReject"})
PRIVATE_CACHE = "private, no-store"


async def _actor_for(request: web.Request, session: AsyncSession) -> tuple[Actor, Coop | None]:
    ctx = request.app[CTX]
    name = request.match_info.get("name")
    if request.path.startswith("/@"):
        from t3r1_fed.actors.local import local_actor_by_name

        found = await local_actor_by_name(session, ctx.settings.domain, name or "")
        uri = found.uri if found else ""
    elif request.path.startswith("/actor"):
        uri = ctx.uris.instance_actor
    elif request.path.startswith("/c/"):
        uri = ctx.uris.coop(name or "")
    else:
        uri = ctx.uris.user(name or "")
    actor = (
        await session.execute(
            select(Actor).where(Actor.uri == uri, Actor.local.is_(True), Actor.deleted_at.is_(None))
        )
    ).scalar()
    if actor is None:
        raise web.HTTPNotFound(
            body=orjson.dumps({"error": "no such actor"}), content_type="application/json"
        )
    coop = None
    if actor.type == "Group":
        coop = (await session.execute(select(Coop).where(Coop.actor_id == actor.id))).scalar()
    return actor, coop


async def _readable_actor(
    request: web.Request, session: AsyncSession
) -> tuple[Actor, Coop | None]:
    """_actor_for, answering 404 for a private cooperative unless the signer may read it."""
    act, coop = await _actor_for(request, session)
    if not await request_can_read(request.app[CTX], request, act, coop, session):
        raise web.HTTPNotFound(
            text='{"error": "no such collection"}', content_type="application/json"
        )
    return act, coop


def _html_page(title: str, body: str) -> web.Response:
    page = (
        '<!doctype html><html lang="fr"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
        f"<body><main>{body}</main></body></html>"
    )
    return web.Response(text=page, content_type="text/html")


async def actor(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    async with ctx.sessions() as session:
        act, coop = await _actor_for(request, session)
        from t3r1_fed.coops.directory import profile_attachment  # opted-in fields only

        fields = await profile_attachment(session, act)
    if not wants_as2(request) and act.type != "Application":
        kind = "Coopérative" if act.type == "Group" else "Membre"
        body = (
            f"<h1>{html.escape(act.name or act.username)}</h1>"
            f"<p>{kind} · @{html.escape(act.username)}@{html.escape(ctx.settings.domain)}</p>"
            f"<div>{act.summary or ''}</div>"
            "<p>Suivez ce compte depuis votre application Mastodon ou votre instance.</p>"
        )
        return _html_page(act.name or act.username, body)
    doc = actor_document(act, ctx.uris, coop)
    if fields:
        doc["attachment"] = fields
    return as2_response(doc, cache="max-age=180")


def _collection(uri: str, total: int, first: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@context": AS_CONTEXT,
        "id": uri,
        "type": "OrderedCollection",
        "totalItems": total,
    }
    if first:
        doc["first"] = first
    return doc


def _page(uri: str, part_of: str, items: Sequence[Any], next_url: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@context": AS_CONTEXT,
        "id": uri,
        "type": "OrderedCollectionPage",
        "partOf": part_of,
        "orderedItems": list(items),
    }
    if next_url:
        doc["next"] = next_url
    return doc


async def _paged(
    request: web.Request,
    session: AsyncSession,
    coll_uri: str,
    count_q: Select[Any],
    items_q: Any,
    id_col: Any,
    render: Any,
) -> web.Response:
    total = (await session.execute(count_q)).scalar_one()
    if request.query.get("page") != "true":
        return as2_response(_collection(coll_uri, total, f"{coll_uri}?page=true"))
    q = items_q
    max_id = request.query.get("max_id", "")
    if max_id.isdigit():
        q = q.where(id_col < int(max_id))
    rows = list((await session.execute(q.order_by(id_col.desc()).limit(PAGE_SIZE))).all())
    items = [render(r) for r in rows]
    next_url = f"{coll_uri}?page=true&max_id={rows[-1][0]}" if len(rows) == PAGE_SIZE else None
    page_uri = f"{coll_uri}?page=true" + (f"&max_id={max_id}" if max_id.isdigit() else "")
    return as2_response(_page(page_uri, coll_uri, items, next_url))


async def outbox(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    async with ctx.sessions() as session:
        act, coop = await _readable_actor(request, session)
        where = (
            Activity.actor_id == act.id,
            Activity.public.is_(True) if coop is None or not coop.private else true(),
            Activity.type.in_(("Create", "Announce")),
        )
        return await _paged(
            request,
            session,
            ctx.uris.sub(act.uri, "outbox"),
            select(func.count()).select_from(Activity).where(*where),
            select(Activity.id, Activity.body).where(*where),
            Activity.id,
            lambda r: {k: v for k, v in orjson.loads(r[1]).items() if k != "@context"},
        )


async def _relations(request: web.Request, what: str) -> web.Response:
    """Followers / following: paged, but each page only lists the requester's own actors.

    Union membership is sensitive, so nobody can enumerate a cooperative's members. A
    server that signs its request (as FEP-8fcf followers synchronisation does) sees the
    relations that involve its own actors — what it already knows — and everyone else
    sees the count and empty pages.
    """
    ctx = request.app[CTX]
    async with ctx.sessions() as session:
        act, _ = await _readable_actor(request, session)
        mine, other = (
            (Follow.followee_id, Follow.follower_id)
            if what == "followers"
            else (Follow.follower_id, Follow.followee_id)
        )
        where = (mine == act.id, Follow.state == "accepted")
        coll = ctx.uris.sub(act.uri, what)
        if request.query.get("page") == "true":
            requester = await signed_requester(ctx, request)
            domain = host_of(requester) if requester else None
            visible = (Actor.domain == domain,) if domain else (Actor.id.is_(None),)
            q = (
                select(Follow.id, Actor.uri)
                .join(Actor, Actor.id == other)
                .where(*where, *visible)
            )
            count = select(func.count()).select_from(Follow).where(*where)
            return await _paged(request, session, coll, count, q, Follow.id, lambda r: r[1])
        total = (
            await session.execute(select(func.count()).select_from(Follow).where(*where))
        ).scalar_one()
    return as2_response(_collection(coll, total, f"{coll}?page=true"))


async def followers(request: web.Request) -> web.Response:
    return await _relations(request, "followers")


async def following(request: web.Request) -> web.Response:
    return await _relations(request, "following")


async def moderators(request: web.Request) -> web.Response:
    """Public by design (members must know who moderates; Lemmy publishes it too), except
    for a private cooperative, whose collections only its readers see."""
    ctx = request.app[CTX]
    async with ctx.sessions() as session:
        act, coop = await _readable_actor(request, session)
        if coop is None:
            raise web.HTTPNotFound()
        uris = list(
            (
                await session.execute(
                    select(Actor.uri)
                    .join(CoopRole, CoopRole.actor_id == Actor.id)
                    .where(CoopRole.coop_actor_id == act.id)
                    .order_by(CoopRole.created_at)
                )
            ).scalars()
        )
    doc = _collection(ctx.uris.sub(act.uri, "moderators"), len(uris), None)
    doc["orderedItems"] = uris
    return as2_response(doc)


async def featured(request: web.Request) -> web.Response:
    """Pinned posts of a cooperative (coops/moderation.py), embedded as Mastodon expects."""
    from t3r1_fed.coops.access import can_read
    from t3r1_fed.coops.moderation import pinned_posts

    ctx = request.app[CTX]
    async with ctx.sessions() as session:
        act, coop = await _actor_for(request, session)
        if coop is None:
            raise web.HTTPNotFound()
        if coop.private and not await can_read(
            session, act, coop, await signed_requester(ctx, request)
        ):
            return json_error(404, "no such collection")
        pinned = await pinned_posts(session, act)
    items = [{k: v for k, v in orjson.loads(o.raw).items() if k != "@context"} for o in pinned]
    doc = _collection(ctx.uris.sub(act.uri, "featured"), len(items), None)
    doc["orderedItems"] = items
    return as2_response(doc)


async def _object_row(ctx: Context, session: AsyncSession, oid: str) -> Object | None:
    return (
        await session.execute(
            select(Object).where(Object.uri == ctx.uris.object(oid), Object.local.is_(True))
        )
    ).scalar()


async def object_(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    async with ctx.sessions() as session:
        obj = await _object_row(ctx, session, request.match_info["oid"])
        if obj is None:
            return json_error(404, "no such object")
        found = await object_coop(session, obj)
        private = found is not None and found[1].private
        if private:
            assert found is not None
            if not await request_can_read(ctx, request, found[0], found[1], session):
                return json_error(404, "no such object")
        elif obj.visibility not in {"public", "unlisted"}:
            return json_error(404, "no such object")
    if obj.deleted_at is not None:
        tomb = {
            "@context": AS_CONTEXT,
            "id": obj.uri,
            "type": "Tombstone",
            "formerType": obj.type,
            "deleted": obj.deleted_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        return as2_response(tomb, status=410)
    doc = orjson.loads(obj.raw)
    doc.setdefault("@context", AS_CONTEXT)
    if not wants_as2(request):
        return _html_page("Publication", obj.content or "")
    return as2_response(doc, cache=PRIVATE_CACHE if private else "max-age=60")


async def activity(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    async with ctx.sessions() as session:
        row = (
            await session.execute(
                select(Activity).where(Activity.uri == ctx.uris.activity(request.match_info["aid"]))
            )
        ).scalar()
    if row is None:
        return json_error(404, "no such activity")
    if not row.public:  # only a private cooperative's content, only to its readers
        if row.type in MEMBERS_ONLY_PRIVATE:
            return json_error(404, "no such activity")
        async with ctx.sessions() as session:
            found = await activity_coop(session, row)
            if found is None or not found[1].private:
                return json_error(404, "no such activity")
            if not await request_can_read(ctx, request, found[0], found[1], session):
                return json_error(404, "no such activity")
    if row.type == "Create" and row.object_uri:
        async with ctx.sessions() as session:
            obj = (
                await session.execute(select(Object.deleted_at).where(Object.uri == row.object_uri))
            ).first()
        if obj is not None and obj[0] is not None:
            return json_error(410, "deleted")
    headers = {"Vary": "Accept, Signature"}
    if not row.public:
        headers["Cache-Control"] = PRIVATE_CACHE
    return web.Response(
        body=row.body.encode(), content_type="application/activity+json", headers=headers
    )
