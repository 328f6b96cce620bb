"""Mastodon media API: upload, show, describe and delete one's own attachments.

    POST   /api/v2/media, /api/v1/media     upload (multipart `file`, `thumbnail`,
                                            `description`, `focus`)
    GET    /api/v1/media/:id                an unattached upload of the token's user
    PUT    /api/v1/media/:id                its description, focus (thumbnail: at upload)
    DELETE /api/v1/media/:id                only while attached to no status (Mastodon 4.4)

Every route needs `write:media` (Mastodon asks it even to read an upload back) and a user.
Uploads go through media/upload.py (type sniffed from the content, size and pixel caps,
EXIF stripped, WebP thumbnail, blurhash); only images are accepted, as the instance
configuration advertises. Processing is synchronous, so v2 answers 200 with the `url` set,
as Mastodon does for media processed at once.

The application's body limit is the inbox's (1 MB): the multipart body is streamed here with
its own byte counting, capped by `Settings.media_max_bytes` per file (413 beyond it).

`claim_media` is for POST /api/v1/statuses (`media_ids[]`): it validates the ids as
Mastodon's PostStatusService does; the caller links the rows with media/attach.py
`link_media` once the status exists.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl

import orjson
from aiohttp import BodyPartReader, web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.api.entities import MAX_MEDIA, media_attachment
from t3r1_fed.api.routing import add, get
from t3r1_fed.appkeys import CTX
from t3r1_fed.context import Context
from t3r1_fed.db.models import Actor, User
from t3r1_fed.db.models_coops import Media
from t3r1_fed.httputil import json_response, read_limited
from t3r1_fed.media import upload as up
from t3r1_fed.media.storage import new_key
from t3r1_fed.oauth.auth import json_exc, require_scope

SCOPE: Final = "write:media"
MAX_DESCRIPTION: Final = 1500
FIELD_LIMIT: Final = 16 * 1024  # a text field of the form (description, focus …)
MAX_PARTS: Final = 16
CHUNK: Final = 64 * 1024
FILE_TYPE_ERROR: Final = "File type of uploaded media could not be verified"
PROCESSING_ERROR: Final = "Error processing thumbnail for uploaded media"


@dataclass
class MediaForm:
    file: bytes | None = None
    filename: str | None = None
    thumbnail: bytes | None = None
    description: str | None = None
    focus: str | None = None


def _unprocessable(message: str) -> web.HTTPException:
    return json_exc(web.HTTPUnprocessableEntity, message)


def _too_large(limit: int, actual: int | None = None, message: str | None = None
               ) -> web.HTTPException:
    return web.HTTPRequestEntityTooLarge(
        max_size=limit, actual_size=actual if actual is not None else limit + 1,
        text=orjson.dumps({"error": message or f"File is too large (at most {limit} bytes)"})
        .decode(),
        content_type="application/json",
    )


async def _read_part(part: BodyPartReader, limit: int, *, is_file: bool) -> bytes:
    """A part's bytes, counted as they arrive: 413 (files) or 422 (fields) past `limit`."""
    buf = bytearray()
    while chunk := await part.read_chunk(CHUNK):
        buf += chunk
        if len(buf) > limit:
            if is_file:
                raise _too_large(limit, len(buf))
            raise _unprocessable(f"Validation failed: {part.name} is too long")
    return bytes(buf)


def _text(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _unprocessable(f"Validation failed: {name} is not valid UTF-8") from e


async def _read_multipart(request: web.Request, max_file: int) -> MediaForm:
    form = MediaForm()
    # A declared length beyond two files and the fields cannot be a valid upload.
    declared = request.content_length
    if declared is not None and declared > 2 * max_file + MAX_PARTS * FIELD_LIMIT:
        raise _too_large(max_file)
    try:
        reader = await request.multipart()
        for _ in range(MAX_PARTS + 1):
            part = await reader.next()
            if part is None:
                return form
            if not isinstance(part, BodyPartReader):
                raise _unprocessable("Nested multipart bodies are not supported")
            name = part.name or ""
            if name in ("file", "thumbnail"):
                if getattr(form, name) is not None:
                    raise _unprocessable(f"Validation failed: more than one {name}")
                data = await _read_part(part, max_file, is_file=True)
                if name == "file":
                    form.file, form.filename = data, part.filename
                else:
                    form.thumbnail = data
            elif name in ("description", "focus"):
                setattr(form, name, _text(await _read_part(part, FIELD_LIMIT, is_file=False),
                                          name))
            else:
                await _read_part(part, FIELD_LIMIT, is_file=False)  # ignored, still capped
    except (ValueError, AssertionError, RuntimeError) as e:
        raise _unprocessable(f"Malformed multipart body: {e}") from e
    raise _unprocessable("Too many parts in the multipart body")


async def read_form(request: web.Request, max_file: int) -> MediaForm:
    """The upload form: multipart (files), or for PUT also urlencoded or JSON fields.
    Query parameters are read too, as Rails merges them."""
    ctype = request.content_type
    if ctype.startswith("multipart/"):
        form = await _read_multipart(request, max_file)
    elif request.can_read_body and ctype in (
        "application/x-www-form-urlencoded", "application/json"
    ):
        raw = await read_limited(request, FIELD_LIMIT * 4)
        if raw is None:
            raise _unprocessable("Request body too large")
        form = MediaForm()
        fields: dict[str, object] = {}
        if ctype == "application/json":
            try:
                doc = orjson.loads(raw) if raw.strip() else {}
            except orjson.JSONDecodeError as e:
                raise json_exc(web.HTTPBadRequest, "Invalid JSON body") from e
            if not isinstance(doc, dict):
                raise json_exc(web.HTTPBadRequest, "Expected a JSON object")
            fields = doc
        else:
            fields = dict(parse_qsl(_text(raw, "body"), keep_blank_values=True))
        for name in ("description", "focus"):
            value = fields.get(name)
            if value is not None and not isinstance(value, str):
                raise _unprocessable(f"Validation failed: {name} must be a string")
            setattr(form, name, value)
    else:
        form = MediaForm()
    for name in ("description", "focus"):
        if getattr(form, name) is None and name in request.query:
            setattr(form, name, request.query[name])
    return form


def check_description(description: str | None) -> str | None:
    """The alt text to store (None to leave it unset); 422 past Mastodon's 1500 chars."""
    if description is None:
        return None
    if len(description) > MAX_DESCRIPTION:
        raise _unprocessable(
            f"Validation failed: Description is too long (maximum is {MAX_DESCRIPTION} characters)"
        )
    return description.strip()


def check_focus(focus: str | None) -> tuple[float, float] | None:
    """Mastodon's "x,y" focal point, both in [-1, 1]; 422 otherwise.

    Validated only: the media table has no column for it (a schema change is needed to keep
    it), so it is neither stored nor rendered."""
    if focus is None or not focus.strip():
        return None
    parts = focus.split(",")
    try:
        x, y = (float(p) for p in parts) if len(parts) == 2 else (math.nan, math.nan)
    except ValueError:
        x = y = math.nan
    if not (-1.0 <= x <= 1.0 and -1.0 <= y <= 1.0):
        raise _unprocessable("Validation failed: Focus must be two numbers between -1 and 1: x,y")
    return x, y


async def _user_actor(session: AsyncSession, user_id: int | None) -> Actor:
    actor = (await session.execute(
        select(Actor).join(User, User.actor_id == Actor.id).where(User.id == user_id)
    )).scalar()
    if actor is None or actor.deleted_at is not None:
        raise json_exc(web.HTTPUnauthorized, "The access token is invalid")
    return actor


def _media_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 19:
        raise json_exc(web.HTTPNotFound, "Record not found")
    return int(raw)


async def _own_media(
    session: AsyncSession, owner: Actor, media_id: int, *, unattached: bool
) -> Media:
    """The owner's local upload (unattached only if asked), 404 for anything else."""
    query = select(Media).where(
        Media.id == media_id, Media.owner_id == owner.id, Media.remote_url.is_(None)
    )
    if unattached:
        query = query.where(Media.object_id.is_(None))
    media = (await session.execute(query)).scalar()
    if media is None:
        raise json_exc(web.HTTPNotFound, "Record not found")
    return media


async def _store_thumbnail(ctx: Context, data: bytes) -> str:
    """A custom preview: any accepted image, stored as our WebP thumbnail of it."""
    s = ctx.settings
    try:
        if up.sniff(data) not in up.IMAGE_TYPES:
            raise _unprocessable(FILE_TYPE_ERROR)
        done = await asyncio.to_thread(up.process, data, None, s.media_max_bytes,
                                       s.media_max_pixels)
    except up.UploadRefused as e:
        if e.status == 413:
            raise _too_large(s.media_max_bytes, message=str(e)) from e
        raise _unprocessable(FILE_TYPE_ERROR) from e
    if done.thumbnail is None:
        raise _unprocessable(PROCESSING_ERROR)
    key = new_key("webp")
    await ctx.media.put(key, done.thumbnail, "image/webp")
    return key


async def create(request: web.Request) -> web.Response:
    info = await require_scope(request, SCOPE)
    ctx = request.app[CTX]
    form = await read_form(request, ctx.settings.media_max_bytes)
    if not form.file:
        raise _unprocessable("Validation failed: File can't be blank")
    description = check_description(form.description)
    check_focus(form.focus)
    try:
        if up.sniff(form.file, form.filename) not in up.IMAGE_TYPES:
            raise _unprocessable(FILE_TYPE_ERROR)
    except up.UploadRefused as e:
        raise _unprocessable(FILE_TYPE_ERROR) from e
    async with ctx.sessions() as session:
        owner = await _user_actor(session, info.user_id)
    thumb_key = await _store_thumbnail(ctx, form.thumbnail) if form.thumbnail else None
    media: Media | None = None
    try:
        # The image work runs before the first statement: no connection is held meanwhile.
        async with ctx.sessions() as session, session.begin():
            try:
                media = await up.upload(ctx, session, owner, form.file, filename=form.filename,
                                        description=description)
            except up.QuotaExceeded as e:  # nothing stored (media/quota.py)
                raise _unprocessable(str(e)) from e
            except up.UploadRefused as e:
                if e.status == 413:
                    raise _too_large(ctx.settings.media_max_bytes, message=str(e)) from e
                raise _unprocessable(FILE_TYPE_ERROR) from e
            if thumb_key is not None:
                old, media.thumbnail_key = media.thumbnail_key, thumb_key
                if old:
                    await ctx.media.delete(old)
            doc = media_attachment(ctx, media)
    except BaseException:
        if media is not None:
            await up.discard(ctx, media)
        if thumb_key is not None:
            await ctx.media.delete(thumb_key)
        raise
    return json_response(doc)


async def show(request: web.Request) -> web.Response:
    info = await require_scope(request, SCOPE)
    ctx = request.app[CTX]
    async with ctx.sessions() as session:
        owner = await _user_actor(session, info.user_id)
        media = await _own_media(session, owner, _media_id(request), unattached=True)
        return json_response(media_attachment(ctx, media))


async def update(request: web.Request) -> web.Response:
    info = await require_scope(request, SCOPE)
    ctx = request.app[CTX]
    media_id = _media_id(request)
    form = await read_form(request, ctx.settings.media_max_bytes)
    description = check_description(form.description)
    check_focus(form.focus)
    if form.thumbnail:
        # The preview's URL is derived from the file's key and served as immutable: a new
        # preview under the same URL would never reach caches. Upload again instead.
        raise _unprocessable("Validation failed: the thumbnail can only be set at upload")
    async with ctx.sessions() as session, session.begin():
        owner = await _user_actor(session, info.user_id)
        media = await _own_media(session, owner, media_id, unattached=True)
        if description is not None:
            media.description = description or None
        doc = media_attachment(ctx, media)
    return json_response(doc)


async def destroy(request: web.Request) -> web.Response:
    info = await require_scope(request, SCOPE)
    ctx = request.app[CTX]
    async with ctx.sessions() as session, session.begin():
        owner = await _user_actor(session, info.user_id)
        media = await _own_media(session, owner, _media_id(request), unattached=False)
        if media.object_id is not None:
            raise _unprocessable("Media attachment is currently used by a status")
        await session.delete(media)
    await up.discard(ctx, media)
    return json_response({})


async def claim_media(session: AsyncSession, owner_actor_id: int, ids: list[str]) -> list[Media]:
    """The uploads `ids` of `owner_actor_id`, in the order given, for a new status.

    As Mastodon's PostStatusService: more than 4 ids, or any id that is not an unattached
    local upload of the owner, is a 422 with Mastodon's message. Duplicates count once. The
    rows are locked (PostgreSQL) until the caller's transaction ends; link them with
    media/attach.py `link_media`.
    """
    if len(ids) > MAX_MEDIA:
        raise _unprocessable(f"Cannot attach more than {MAX_MEDIA} files")
    wanted = list(dict.fromkeys(str(i).strip() for i in ids))
    numeric = [int(i) for i in wanted if i.isdigit() and len(i) <= 19]
    rows: dict[int, Media] = {}
    if numeric:
        rows = {m.id: m for m in (await session.execute(
            select(Media).where(
                Media.id.in_(numeric), Media.owner_id == owner_actor_id,
                Media.object_id.is_(None), Media.remote_url.is_(None),
            ).with_for_update()
        )).scalars()}
    missing = [i for i in wanted if not (i.isdigit() and len(i) <= 19 and int(i) in rows)]
    if missing:
        raise _unprocessable(
            f"Media {', '.join(missing)} not found or already attached to another post"
        )
    return [rows[int(i)] for i in wanted]


def routes(router: web.UrlDispatcher) -> None:
    add(router, "POST", "/api/v1/media", create)
    add(router, "POST", "/api/v2/media", create)
    get(router, "/api/v1/media/{id}", show)
    add(router, "PUT", "/api/v1/media/{id}", update)
    add(router, "DELETE", "/api/v1/media/{id}", destroy)
