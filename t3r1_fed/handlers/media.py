"""GET /media/{key} and /media/{key}/thumb: uploaded files, served with safe headers.

- `Content-Type` is the type we detected at upload, with `X-Content-Type-Options: nosniff`
  and a sandboxing CSP, so a file is never interpreted as something else;
- `Content-Disposition`: inline for images, attachment for everything else, with an
  RFC 6266 filename (ASCII fallback + `filename*` UTF-8);
- media of a private cooperative (or attached to an object of one) answers 404 unless the
  signed requester may read the cooperative (coops/access.py `request_can_read`), and is never
  cacheable by shared caches. Keys are random: they cannot be enumerated either.
Remote media are only referenced (their `remote_url`), never proxied: 404 here.
"""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.appkeys import CTX
from t3r1_fed.context import Context
from t3r1_fed.coops.access import request_can_read
from t3r1_fed.db.models import Actor, Coop, Object
from t3r1_fed.db.models_coops import Media
from t3r1_fed.httputil import json_error
from t3r1_fed.media.storage import KEY_RE, StorageError
from t3r1_fed.media.upload import SUFFIXES


def content_disposition(media_type: str, filename: str | None, fallback: str) -> str:
    """RFC 6266: inline for images, attachment otherwise; never a raw client string."""
    disposition = "inline" if media_type.startswith("image/") else "attachment"
    name = filename or fallback
    # The saved file's extension is the detected type's, whatever the uploader called it.
    suffix = SUFFIXES.get(media_type)
    if suffix and not name.lower().endswith(f".{suffix}"):
        stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
        name = f"{stem}.{suffix}"
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\%;' else "_" for c in name)
    return f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


async def _group_of(session: AsyncSession, media: Media) -> int | None:
    """The cooperative whose access rules govern this file, if any."""
    if media.coop_actor_id is not None:
        return media.coop_actor_id
    if media.object_id is not None:
        group_id = (
            await session.execute(select(Object.group_id).where(Object.id == media.object_id))
        ).scalar()
        return group_id
    return None


async def readable_media(
    ctx: Context, session: AsyncSession, request: web.Request, key: str
) -> tuple[Media, bool] | None:
    """The local media row at `key` if the requester may read it, with `private` set when
    it belongs to a private cooperative; None otherwise (answer 404)."""
    if not KEY_RE.fullmatch(key):
        return None
    media = (
        await session.execute(select(Media).where(Media.key == key, Media.remote_url.is_(None)))
    ).scalar()
    if media is None:
        return None
    if media.object_id is not None:
        deleted = (
            await session.execute(select(Object.deleted_at).where(Object.id == media.object_id))
        ).scalar()
        if deleted is not None:
            return None
    group_id = await _group_of(session, media)
    if group_id is None:
        return media, False
    coop = (await session.execute(select(Coop).where(Coop.actor_id == group_id))).scalar()
    if coop is None or not coop.private:
        return media, False
    group = (await session.execute(select(Actor).where(Actor.id == group_id))).scalar_one()
    if not await request_can_read(ctx, request, group, coop, session):
        return None
    return media, True


async def _serve(request: web.Request, thumb: bool) -> web.StreamResponse:
    ctx = request.app[CTX]
    key = request.match_info["key"]
    async with ctx.sessions() as session:
        found = await readable_media(ctx, session, request, key)
    if found is None:
        return json_error(404, "no such media")
    media, private = found
    stored_key, media_type = media.key, media.media_type
    if thumb:
        if media.thumbnail_key is None:
            return json_error(404, "no thumbnail")
        stored_key, media_type = media.thumbnail_key, "image/webp"
    try:
        body = await ctx.media.get(stored_key)
    except StorageError:
        return json_error(404, "no such media")
    content_type = f"{media_type}; charset=utf-8" if media_type.startswith("text/") else media_type
    return web.Response(
        body=body,
        headers={
            "Content-Type": content_type,
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Content-Disposition": content_disposition(media_type, media.filename, stored_key),
            "Cache-Control": (
                "private, max-age=300" if private else "public, max-age=31536000, immutable"
            ),
        },
    )


async def media_file(request: web.Request) -> web.StreamResponse:
    return await _serve(request, thumb=False)


async def media_thumb(request: web.Request) -> web.StreamResponse:
    return await _serve(request, thumb=True)


def routes(router: web.UrlDispatcher) -> None:
    router.add_get("/media/{key}", media_file)
    router.add_get("/media/{key}/thumb", media_thumb)
