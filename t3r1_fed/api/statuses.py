"""Mastodon's statuses and polls endpoints: post, read, context, delete, edit, favourite,
boost, and who favourited or boosted; vote in polls.

A status the viewer may not see is a 404, never a 403. A boost's id given to an action
(favourite, boost, context …) designates the boosted post, as Mastodon does. Posting
logic lives in api/compose.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Final

import orjson
from aiohttp import web
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.api import entities, railsparams
from t3r1_fed.api.compose import ComposeError, PollSpec, StatusInput, post_status
from t3r1_fed.api.entities import MAX_MEDIA
from t3r1_fed.api.media import claim_media
from t3r1_fed.api.pagination import page_params, with_link
from t3r1_fed.api.preferences import PREFERENCES
from t3r1_fed.api.routing import add, get
from t3r1_fed.api.statuses_view import (
    STATUS_KINDS,
    StatusRef,
    can_see,
    parse_sid,
    ref_for_sid,
    ref_of_object,
    render,
)
from t3r1_fed.api.viewer import Viewer, optional_viewer, required_viewer
from t3r1_fed.appkeys import CTX
from t3r1_fed.context import Context
from t3r1_fed.coops.posting import coop_for_actor
from t3r1_fed.db.models import Actor, Like, Object, Share, utcnow
from t3r1_fed.db.models_api import IdempotencyKey
from t3r1_fed.db.models_coops import Media
from t3r1_fed.httputil import json_response
from t3r1_fed.inbox.backfill import thread_opened
from t3r1_fed.media.attach import attachment_dict, link_media
from t3r1_fed.oauth.auth import json_exc
from t3r1_fed.outbox.publish import followers_of, publish
from t3r1_fed.vocab.context import AS_PUBLIC
from t3r1_fed.vocab.sanitize import plain_text

NOT_FOUND: Final = "Record not found"
IDEMPOTENCY_TTL: Final = timedelta(hours=1)
MAX_IDS: Final = 40  # GET /api/v1/statuses?id[]=…
MAX_ANCESTORS: Final = 40
MAX_DESCENDANTS: Final = 500
STATUS: Final = r"/api/v1/statuses/{id:\d+}"


def _unprocessable(message: str) -> web.HTTPException:
    return json_exc(web.HTTPUnprocessableEntity, message)


def _not_found() -> web.HTTPException:
    return json_exc(web.HTTPNotFound, NOT_FOUND)


async def _status_obj(
    session: AsyncSession, viewer: Actor | None, raw: str
) -> tuple[StatusRef, Object]:
    """The status `raw` names and its post (the boosted one for a boost), if the viewer
    may see it; else 404."""
    sid = parse_sid(raw)
    ref = await ref_for_sid(session, sid) if sid is not None else None
    if ref is None:
        raise _not_found()
    obj = await session.get(Object, ref.object_id)
    if obj is None or obj.kind not in STATUS_KINDS or not await can_see(session, viewer, obj):
        raise _not_found()
    return ref, obj


async def _one(ctx: Context, session: AsyncSession, viewer: Actor | None,
               ref: StatusRef, filter_context: str | None = None) -> dict[str, Any]:
    docs = await render(ctx, session, viewer, [ref], filter_context=filter_context)
    if not docs:
        raise _not_found()
    return docs[0]


def _source_text(obj: Object) -> str:
    """What the author typed (kept as the object's `source`), else the text of the HTML."""
    try:
        doc = orjson.loads(obj.raw)
    except orjson.JSONDecodeError:
        doc = {}
    src = doc.get("source") if isinstance(doc, dict) else None
    if isinstance(src, dict) and isinstance(src.get("content"), str):
        return str(src["content"])
    return plain_text(obj.content or "")


# ---- posting ----------------------------------------------------------------------------


def _media_ids(p: dict[str, Any]) -> list[str]:
    return [railsparams.as_str(raw, field="media_ids") or ""
            for raw in railsparams.as_list(p.get("media_ids"), field="media_ids")]


def _status_input(p: dict[str, Any]) -> StatusInput:
    if p.get("scheduled_at") not in (None, ""):
        raise _unprocessable("scheduled posts are not supported")
    text = railsparams.as_str(p.get("status"), field="status") or ""
    poll = None
    if p.get("poll") not in (None, ""):
        spec = p["poll"]
        if not isinstance(spec, dict):
            raise json_exc(web.HTTPBadRequest, "poll must be a hash")
        options = [railsparams.as_str(o, field="poll[options]") or ""
                   for o in railsparams.as_list(spec.get("options"), field="poll[options]")]
        expires = railsparams.as_int(spec.get("expires_in"), field="poll[expires_in]")
        if expires is None:
            raise _unprocessable("Validation failed: poll expires_in is missing")
        multiple = railsparams.as_bool(spec.get("multiple"), field="poll[multiple]")
        poll = PollSpec(options, expires, bool(multiple))
    visibility = railsparams.as_str(p.get("visibility"), field="visibility") or "public"
    return StatusInput(
        text=text,
        visibility=visibility,
        spoiler_text=(railsparams.as_str(p.get("spoiler_text"), field="spoiler_text") or ""
                      ).strip(),
        sensitive=bool(railsparams.as_bool(p.get("sensitive"), field="sensitive")),
        # Mastodon falls back on the author's default posting language (api/preferences.py).
        language=(railsparams.as_str(p.get("language"), field="language")
                  or PREFERENCES["posting:default:language"]),
        poll=poll,
    )


async def _idempotent_hit(
    session: AsyncSession, user_id: int, key: str
) -> int | None:
    """The object posted earlier with this key (within the hour), if any."""
    row = await session.get(IdempotencyKey, (user_id, key))
    if row is None:
        return None
    if row.created_at < utcnow() - IDEMPOTENCY_TTL:
        await session.delete(row)
        await session.flush()
        return None
    return row.object_id


async def create_status(request: web.Request) -> web.Response:
    ctx: Context = request.app[CTX]
    key = request.headers.get("Idempotency-Key", "").strip()[:255] or None
    async with ctx.sessions() as s:
        viewer = await required_viewer(request, s, "write:statuses")
        params = await railsparams.read_params(request)
        req = _status_input(params)
        reply_to = railsparams.as_str(params.get("in_reply_to_id"), field="in_reply_to_id")
        if reply_to:
            _, parent = await _status_obj(s, viewer.actor, reply_to)
            req.in_reply_to = parent
        if key is not None:
            earlier = await _idempotent_hit(s, viewer.user.id, key)
            if earlier is not None:
                return await _render_object(ctx, s, viewer.actor, earlier)
            user_id, actor_id = viewer.user.id, viewer.actor.id
            s.add(IdempotencyKey(user_id=user_id, key=key))
            try:
                await s.flush()  # a concurrent request with the same key waits here
            except IntegrityError:
                await s.rollback()
                return await _after_race(ctx, s, user_id, actor_id, key)
        media_ids = [m for m in _media_ids(params) if m]
        if media_ids:
            req.media = await claim_media(s, viewer.actor.id, media_ids)
        try:
            obj = await post_status(ctx, s, viewer.actor, req)
        except ComposeError as e:
            await s.rollback()
            raise _unprocessable(str(e)) from None
        if key is not None:
            row = await s.get(IdempotencyKey, (viewer.user.id, key))
            assert row is not None
            row.object_id = obj.id
        await s.commit()
        return json_response(await _one(ctx, s, viewer.actor, ref_of_object(obj)))


async def _render_object(ctx: Context, s: AsyncSession, viewer: Actor,
                         object_id: int) -> web.Response:
    obj = await s.get(Object, object_id)
    if obj is None:
        raise _not_found()
    return json_response(await _one(ctx, s, viewer, ref_of_object(obj)))


async def _after_race(ctx: Context, s: AsyncSession, user_id: int, actor_id: int,
                      key: str) -> web.Response:
    """Another request with the same key committed first: answer with its status."""
    row = await s.get(IdempotencyKey, (user_id, key), populate_existing=True)
    actor = await s.get(Actor, actor_id, populate_existing=True)
    if row is None or row.object_id is None or actor is None:
        raise _unprocessable("a request with this Idempotency-Key is already being processed")
    return await _render_object(ctx, s, actor, row.object_id)


# ---- reading ----------------------------------------------------------------------------


async def show_status(request: web.Request) -> web.Response:
    ctx: Context = request.app[CTX]
    async with ctx.sessions() as s:
        viewer = await optional_viewer(request, s, "read:statuses")
        me = viewer.actor if viewer else None
        ref, _ = await _status_obj(s, me, request.match_info["id"])
        return json_response(await _one(ctx, s, me, ref, "thread"))


async def show_statuses(request: web.Request) -> web.Response:
    """GET /api/v1/statuses?id[]=…: the visible ones, in the order asked."""
    ctx: Context = request.app[CTX]
    raw_ids = [*request.query.getall("id[]", []), *request.query.getall("id", [])]
    if len(raw_ids) > MAX_IDS:
        raise _unprocessable(f"at most {MAX_IDS} ids")
    async with ctx.sessions() as s:
        viewer = await optional_viewer(request, s, "read:statuses")
        refs: list[StatusRef] = []
        for raw in dict.fromkeys(raw_ids):
            sid = parse_sid(raw)
            ref = await ref_for_sid(s, sid) if sid is not None else None
            if ref is not None:
                refs.append(ref)
        docs = await render(ctx, s, viewer.actor if viewer else None, refs)
    return json_response(docs)


async def _ancestors(s: AsyncSession, obj: Object) -> list[Object]:
    out: list[Object] = []
    seen = {obj.id}
    cur = obj
    while cur.in_reply_to and len(out) < MAX_ANCESTORS:
        parent = (await s.execute(select(Object).where(Object.uri == cur.in_reply_to))).scalar()
        if parent is None or parent.id in seen:
            break
        seen.add(parent.id)
        out.append(parent)
        cur = parent
    out.reverse()
    return out


async def _descendants(s: AsyncSession, obj: Object) -> list[Object]:
    """The reply tree under `obj`, depth first, siblings oldest first (bounded)."""
    children: dict[str, list[Object]] = {}
    frontier = [obj.uri]
    total = 0
    while frontier and total < MAX_DESCENDANTS:
        rows = list((await s.execute(
            select(Object).where(Object.in_reply_to.in_(frontier))
            .order_by(Object.sid).limit(MAX_DESCENDANTS - total)
        )).scalars())
        frontier = []
        for row in rows:
            if row.uri in children or row.id == obj.id:
                continue
            children.setdefault(row.in_reply_to or "", []).append(row)
            children.setdefault(row.uri, [])
            frontier.append(row.uri)
            total += 1
    out: list[Object] = []
    stack = list(reversed(children.get(obj.uri, [])))
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(reversed(children.get(node.uri, [])))
    return out


async def status_context(request: web.Request) -> web.Response:
    ctx: Context = request.app[CTX]
    async with ctx.sessions() as s:
        viewer = await optional_viewer(request, s, "read:statuses")
        me = viewer.actor if viewer else None
        _, obj = await _status_obj(s, me, request.match_info["id"])
        if me is not None:  # a member opens a remote thread: FEP-f228 backfill, in the worker
            await thread_opened(ctx, obj)
        up = [o for o in await _ancestors(s, obj) if o.kind in STATUS_KINDS]
        down = [o for o in await _descendants(s, obj) if o.kind in STATUS_KINDS]
        return json_response({
            "ancestors": await render(ctx, s, me, [ref_of_object(o) for o in up],
                                      filter_context="thread"),
            "descendants": await render(ctx, s, me, [ref_of_object(o) for o in down],
                                        filter_context="thread"),
        })


async def status_source(request: web.Request) -> web.Response:
    ctx: Context = request.app[CTX]
    async with ctx.sessions() as s:
        viewer = await required_viewer(request, s, "read:statuses")
        _, obj = await _status_obj(s, viewer.actor, request.match_info["id"])
        if obj.author_id != viewer.actor.id:
            raise _not_found()
        return json_response({"id": str(obj.sid), "text": _source_text(obj),
                              "spoiler_text": obj.summary or ""})


# ---- deleting and editing ---------------------------------------------------------------


async def _own_status(s: AsyncSession, viewer: Viewer, raw: str) -> Object:
    """The viewer's own live, local post named by `raw` (a boost id does not designate the
    boosted post here); else 404."""
    sid = parse_sid(raw)
    ref = await ref_for_sid(s, sid) if sid is not None else None
    if ref is None or ref.share_id is not None:
        raise _not_found()
    obj = await s.get(Object, ref.object_id)
    if (obj is None or obj.author_id != viewer.actor.id or not obj.local
            or obj.deleted_at is not None or obj.kind not in STATUS_KINDS):
        raise _not_found()
    return obj


async def delete_status(request: web.Request) -> web.Response:
    """Delete one's own status; the answer is the status with `text` (for "delete and
    redraft")."""
    ctx: Context = request.app[CTX]
    async with ctx.sessions() as s:
        viewer = await required_viewer(request, s, "write:statuses")
        obj = await _own_status(s, viewer, request.match_info["id"])
        doc = await _one(ctx, s, viewer.actor, ref_of_object(obj))
        doc["text"] = _source_text(obj)
        await _delete(ctx, s, viewer, obj)
        await s.commit()
    return json_response(doc)


async def _delete(ctx: Context, s: AsyncSession, viewer: Viewer, obj: Object) -> None:
    from t3r1_fed.coops.posting import PostRefused, local_delete
    from t3r1_fed.outbox.personal import delete_personal

    group = await s.get(Actor, obj.group_id) if obj.group_id is not None else None
    if group is not None and group.local and await coop_for_actor(s, group.id) is not None:
        try:
            await local_delete(ctx, s, viewer.user.username, obj.uri)
        except PostRefused as e:
            raise _unprocessable(str(e)) from None
    else:
        await delete_personal(ctx, s, viewer.actor, obj)


async def edit_status(request: web.Request) -> web.Response:
    """PUT /api/v1/statuses/:id: new text, content warning, sensitivity, language."""
    from t3r1_fed.api.compose import edit_fields
    from t3r1_fed.coops.editing import EditError, publish_edit
    from t3r1_fed.outbox.personal import update_personal

    ctx: Context = request.app[CTX]
    async with ctx.sessions() as s:
        viewer = await required_viewer(request, s, "write:statuses")
        obj = await _own_status(s, viewer, request.match_info["id"])
        p = await railsparams.read_params(request)
        if p.get("poll") not in (None, ""):
            raise _unprocessable("changing a poll is not supported; delete and redraft it")
        media = None
        if p.get("media_ids") is not None:
            if obj.type == "Question":
                raise _unprocessable("Validation failed: a poll cannot have media attachments")
            media = await _edited_media(s, viewer, obj, [m for m in _media_ids(p) if m])
        try:
            changes = await edit_fields(
                ctx, s, obj,
                text=railsparams.as_str(p.get("status"), field="status"),
                spoiler_text=railsparams.as_str(p.get("spoiler_text"), field="spoiler_text"),
                sensitive=railsparams.as_bool(p.get("sensitive"), field="sensitive"),
                language=railsparams.as_str(p.get("language"), field="language"),
                has_media=None if media is None else bool(media),
            )
        except ComposeError as e:
            raise _unprocessable(str(e)) from None
        if media is not None:
            changes["attachment"] = [attachment_dict(ctx, m) for m in media] or None
        group = await s.get(Actor, obj.group_id) if obj.group_id is not None else None
        if group is not None and group.local:
            try:
                await publish_edit(ctx, s, viewer.actor, obj, changes)
            except EditError as e:
                raise _unprocessable(str(e)) from None
            obj.summary = changes.get("summary")
            obj.sensitive = bool(changes.get("sensitive"))
            obj.language = next(iter(changes.get("contentMap") or {}), None)
        else:
            await update_personal(ctx, s, viewer.actor, obj, changes)
        await s.commit()
        return json_response(await _one(ctx, s, viewer.actor, ref_of_object(obj)))


async def _edited_media(s: AsyncSession, viewer: Viewer, obj: Object,
                        ids: list[str]) -> list[Media]:
    """The uploads an edit leaves on `obj`: those it had and keeps, plus new unattached
    uploads of the author (claim_media); those left out are detached."""
    current = {str(m.id): m for m in (await s.execute(
        select(Media).where(Media.object_id == obj.id).order_by(Media.id)
    )).scalars()}
    wanted = list(dict.fromkeys(ids))
    if len(wanted) > MAX_MEDIA:
        raise _unprocessable(f"Cannot attach more than {MAX_MEDIA} files")
    new = [i for i in wanted if i not in current]
    claimed = {str(m.id): m for m in await claim_media(s, viewer.actor.id, new)} if new else {}
    chosen = [current.get(i) or claimed[i] for i in wanted]
    for key, m in current.items():
        if key not in wanted:
            m.object_id = None
    link_media(chosen, obj)
    return chosen


# ---- favourites and boosts --------------------------------------------------------------


async def _interaction_recipients(s: AsyncSession, obj: Object) -> list[Actor]:
    """The post's author, and the remote group it was posted into (FEP-1b12 groups relay
    likes and take them as votes)."""
    out: list[Actor] = []
    author = await s.get(Actor, obj.author_id)
    if author is not None:
        out.append(author)
    if obj.group_id is not None:
        group = await s.get(Actor, obj.group_id)
        if group is not None and not group.local:
            out.append(group)
    return out


async def favourite(request: web.Request) -> web.Response:
    ctx: Context = request.app[CTX]
    async with ctx.sessions() as s:
        viewer = await required_viewer(request, s, "write:favourites")
        _, obj = await _status_obj(s, viewer.actor, request.match_info["id"])
        existing = (await s.execute(select(Like.id).where(
            Like.actor_id == viewer.actor.id, Like.object_id == obj.id))).first()
        if existing is None:
            recipients = await _interaction_recipients(s, obj)
            like = {
                "id": ctx.uris.activity(),
                "type": "Like",
                "actor": viewer.actor.uri,
                "object": obj.uri,
                "to": [a.uri for a in recipients if a.id != viewer.actor.id],
            }
            s.add(Like(uri=like["id"], actor_id=viewer.actor.id, object_id=obj.id))
            await publish(ctx, s, viewer.actor, like, recipients=recipients,
                          public=obj.visibility in ("public", "unlisted"))
            await s.commit()
        return json_response(await _one(ctx, s, viewer.actor, ref_of_object(obj)))


async def unfavourite(request: web.Request) -> web.Response:
    ctx: Context = request.app[CTX]
    async with ctx.sessions() as s:
        viewer = await required_viewer(request, s, "write:favourites")
        _, obj = await _status_obj(s, viewer.actor, request.match_info["id"])
        like = (await s.execute(select(Like).where(
            Like.actor_id == viewer.actor.id, Like.object_id == obj.id))).scalar()
        if like is not None:
            recipients = await _interaction_recipients(s, obj)
            undo = {
                "id": ctx.uris.activity(),
                "type": "Undo",
                "actor": viewer.actor.uri,
                "object": {"id": like.uri, "type": "Like", "actor": viewer.actor.uri,
                           "object": obj.uri},
                "to": [a.uri for a in recipients if a.id != viewer.actor.id],
            }
            await s.execute(delete(Like).where(Like.id == like.id))
            await publish(ctx, s, viewer.actor, undo, recipients=recipients,
                          public=obj.visibility in ("public", "unlisted"))
            await s.commit()
        return json_response(await _one(ctx, s, viewer.actor, ref_of_object(obj)))


def _boost_addressing(visibility: str, me: Actor, author: Actor) -> tuple[list[str], list[str]]:
    followers = [me.followers_url] if me.followers_url else []
    if visibility == "unlisted":
        return followers, [AS_PUBLIC, author.uri]
    if visibility == "private":
        return followers, [author.uri]
    return [AS_PUBLIC], [author.uri, *followers]


async def reblog(request: web.Request) -> web.Response:
    ctx: Context = request.app[CTX]
    async with ctx.sessions() as s:
        viewer = await required_viewer(request, s, "write:statuses")
        p = await railsparams.read_params(request)
        visibility = railsparams.as_str(p.get("visibility"), field="visibility") or "public"
        if visibility not in ("public", "unlisted", "private"):
            raise _unprocessable("visibility must be public, unlisted or private")
        _, obj = await _status_obj(s, viewer.actor, request.match_info["id"])
        if obj.visibility not in ("public", "unlisted"):
            raise _unprocessable("Validation failed: Reblog of private status is not allowed")
        share = (await s.execute(select(Share).where(
            Share.actor_id == viewer.actor.id, Share.object_id == obj.id))).scalar()
        if share is None:
            author = await s.get(Actor, obj.author_id)
            assert author is not None
            to, cc = _boost_addressing(visibility, viewer.actor, author)
            announce = {
                "id": ctx.uris.activity(),
                "type": "Announce",
                "actor": viewer.actor.uri,
                "object": obj.uri,
                "to": to,
                "cc": cc,
                "published": utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            share = Share(uri=announce["id"], actor_id=viewer.actor.id, object_id=obj.id)
            s.add(share)
            recipients = [*await followers_of(s, viewer.actor.id), author]
            await publish(ctx, s, viewer.actor, announce, recipients=recipients,
                          public=visibility != "private")
            await s.flush()
            await s.commit()
        ref = StatusRef(share.sid, obj.id, share.id)
        return json_response(await _one(ctx, s, viewer.actor, ref))


async def unreblog(request: web.Request) -> web.Response:
    ctx: Context = request.app[CTX]
    async with ctx.sessions() as s:
        viewer = await required_viewer(request, s, "write:statuses")
        _, obj = await _status_obj(s, viewer.actor, request.match_info["id"])
        share = (await s.execute(select(Share).where(
            Share.actor_id == viewer.actor.id, Share.object_id == obj.id))).scalar()
        if share is not None:
            author = await s.get(Actor, obj.author_id)
            assert author is not None
            announce = orjson.loads((await _activity_body(s, share.uri)) or "{}")
            undo = {
                "id": ctx.uris.activity(),
                "type": "Undo",
                "actor": viewer.actor.uri,
                "object": {"id": share.uri, "type": "Announce", "actor": viewer.actor.uri,
                           "object": obj.uri},
                "to": announce.get("to", [AS_PUBLIC]),
                "cc": announce.get("cc", [author.uri]),
            }
            await s.execute(delete(Share).where(Share.id == share.id))
            public = AS_PUBLIC in [*undo["to"], *undo["cc"]]
            await publish(ctx, s, viewer.actor, undo, public=public,
                          recipients=[*await followers_of(s, viewer.actor.id), author])
            await s.commit()
        return json_response(await _one(ctx, s, viewer.actor, ref_of_object(obj)))


async def _activity_body(s: AsyncSession, uri: str) -> str | None:
    from t3r1_fed.db.models import Activity

    return (await s.execute(select(Activity.body).where(Activity.uri == uri))).scalar()


async def _who(request: web.Request, *, likes: bool) -> web.Response:
    ctx: Context = request.app[CTX]
    page = page_params(request, default=40, maximum=80)
    async with ctx.sessions() as s:
        viewer = await optional_viewer(request, s, "read:accounts")
        _, obj = await _status_obj(s, viewer.actor if viewer else None, request.match_info["id"])
        table: Any = Like if likes else Share
        q = (select(table.id, Actor).join(Actor, Actor.id == table.actor_id)
             .where(table.object_id == obj.id, Actor.deleted_at.is_(None)))
        if page.max_id is not None:
            q = q.where(table.id < page.max_id)
        if page.lower is not None:
            q = q.where(table.id > page.lower)
        q = q.order_by(table.id.asc() if page.ascending else table.id.desc()).limit(page.limit)
        rows: Sequence[Any] = list((await s.execute(q)).all())
        if page.ascending:
            rows = list(reversed(rows))
        accounts = await entities.accounts(s, ctx.settings, [a for _, a in rows])
        docs = [accounts[a.id] for _, a in rows]
    return with_link(request, json_response(docs), [rid for rid, _ in rows])


async def favourited_by(request: web.Request) -> web.Response:
    return await _who(request, likes=True)


async def reblogged_by(request: web.Request) -> web.Response:
    return await _who(request, likes=False)


# ---- polls --------------------------------------------------------------------------------


async def _poll_obj(s: AsyncSession, viewer: Actor | None, raw: str) -> Object:
    try:
        oid = int(raw)
    except ValueError:
        raise _not_found() from None
    obj = await s.get(Object, oid) if 0 < oid < (1 << 63) else None
    if obj is None or obj.type != "Question" or not await can_see(s, viewer, obj):
        raise _not_found()
    return obj


async def _poll_doc(ctx: Context, s: AsyncSession, viewer: Actor | None,
                    obj: Object) -> dict[str, Any]:
    doc = await _one(ctx, s, viewer, ref_of_object(obj))
    if doc.get("poll") is None:
        raise _not_found()
    poll: dict[str, Any] = doc["poll"]
    return poll


async def show_poll(request: web.Request) -> web.Response:
    ctx: Context = request.app[CTX]
    async with ctx.sessions() as s:
        viewer = await optional_viewer(request, s, "read:statuses")
        me = viewer.actor if viewer else None
        obj = await _poll_obj(s, me, request.match_info["id"])
        if obj.local:
            from t3r1_fed.coops.polls import PollError, close_if_due

            try:
                if await close_if_due(ctx, s, obj):
                    await s.commit()
            except PollError:
                raise _not_found() from None
        return json_response(await _poll_doc(ctx, s, me, obj))


async def vote(request: web.Request) -> web.Response:
    from t3r1_fed.coops.polls import PollError
    from t3r1_fed.coops.polls import vote as cast_vote
    from t3r1_fed.db.models_coops import PollOption, PollVote

    ctx: Context = request.app[CTX]
    async with ctx.sessions() as s:
        viewer = await required_viewer(request, s, "write:statuses")
        obj = await _poll_obj(s, viewer.actor, request.match_info["id"])
        p = await railsparams.read_params(request)
        picks: list[int] = []
        for raw in railsparams.as_list(p.get("choices"), field="choices"):
            value = railsparams.as_int(raw, field="choices")
            if value is not None:
                picks.append(value)
        if not picks:
            raise _unprocessable("Validation failed: choose at least one option")
        options = {o.position: o.name for o in (await s.execute(
            select(PollOption).where(PollOption.poll_id == obj.id)
        )).scalars()}
        if any(i not in options for i in picks):
            raise _unprocessable("Validation failed: no such option")
        already = (await s.execute(select(PollVote.position).where(
            PollVote.poll_id == obj.id, PollVote.actor_id == viewer.actor.id))).first()
        if already is not None:
            raise _unprocessable("Validation failed: You have already voted on this poll")
        try:
            await cast_vote(ctx, s, viewer.actor, obj, [options[i] for i in picks])
        except PollError as e:
            raise _unprocessable(f"Validation failed: {e}") from None
        await s.commit()
        return json_response(await _poll_doc(ctx, s, viewer.actor, obj))


def routes(router: web.UrlDispatcher) -> None:
    add(router, "POST", "/api/v1/statuses", create_status)
    get(router, "/api/v1/statuses", show_statuses)
    get(router, STATUS, show_status)
    add(router, "DELETE", STATUS, delete_status)
    add(router, "PUT", STATUS, edit_status)
    get(router, STATUS + "/context", status_context)
    get(router, STATUS + "/source", status_source)
    add(router, "POST", STATUS + "/favourite", favourite)
    add(router, "POST", STATUS + "/unfavourite", unfavourite)
    add(router, "POST", STATUS + "/reblog", reblog)
    add(router, "POST", STATUS + "/unreblog", unreblog)
    get(router, STATUS + "/favourited_by", favourited_by)
    get(router, STATUS + "/reblogged_by", reblogged_by)
    get(router, r"/api/v1/polls/{id:\d+}", show_poll)
    add(router, "POST", r"/api/v1/polls/{id:\d+}/votes", vote)
