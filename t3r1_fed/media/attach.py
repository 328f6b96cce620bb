"""Uploaded media as ActivityStreams attachments, and linking them to the post they join."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.db.models import Actor, Object
from t3r1_fed.db.models_coops import Media
from t3r1_fed.media.upload import media_url

# Mastodon shows four attachments; a Note never carries more.
MAX_NOTE_ATTACHMENTS: Final = 4


class AttachmentError(ValueError):
    """Media ids that cannot be attached; the message says why."""


def attachment_dict(ctx: Context, media: Media) -> dict[str, Any]:
    """`{type, mediaType, url, name (alt text), width, height}` (Mastodon's shape)."""
    doc: dict[str, Any] = {
        "type": "Image" if media.media_type.startswith("image/") else "Document",
        "mediaType": media.media_type,
        "url": media.remote_url or media_url(ctx, media.key),
        "name": media.description or media.filename or "",
    }
    if media.width and media.height:
        doc["width"], doc["height"] = media.width, media.height
    if media.blurhash:
        doc["blurhash"] = media.blurhash
    return doc


async def attachments_for(
    ctx: Context,
    session: AsyncSession,
    owner: Actor,
    media_ids: Sequence[int],
    *,
    limit: int = MAX_NOTE_ATTACHMENTS,
) -> tuple[list[dict[str, Any]], list[Media]]:
    """Attachment dicts for `media_ids`, in order: uploads of `owner`, not yet attached."""
    ids = list(dict.fromkeys(media_ids))
    if len(ids) > limit:
        raise AttachmentError(f"at most {limit} attachments")
    if not ids:
        return [], []
    rows = {
        m.id: m
        for m in (await session.execute(select(Media).where(Media.id.in_(ids)))).scalars()
    }
    chosen: list[Media] = []
    for mid in ids:
        media = rows.get(mid)
        if media is None or media.owner_id != owner.id or media.remote_url is not None:
            raise AttachmentError(f"no such upload: {mid}")
        if media.object_id is not None:
            raise AttachmentError(f"upload {mid} is already attached")
        chosen.append(media)
    return [attachment_dict(ctx, m) for m in chosen], chosen


def link_media(media: Sequence[Media], obj: Object) -> None:
    """Attach uploads to the stored post: they now follow its cooperative's access rules."""
    for m in media:
        m.object_id = obj.id
        if obj.group_id is not None:
            m.coop_actor_id = obj.group_id


async def publish_news_with_media(
    ctx: Context,
    session: AsyncSession,
    author: Actor,
    coop_name: str,
    text: str,
    *,
    media_ids: Sequence[int],
    **options: Any,
) -> Object:
    """coops/news.py `publish_news` with uploads: their attachment dicts go into the post
    and the uploads are linked to it (so a private cooperative's rules then apply)."""
    from t3r1_fed.coops.news import publish_news

    attachments, media = await attachments_for(ctx, session, author, media_ids)
    row = await publish_news(
        ctx, session, author, coop_name, text, attachments=attachments, **options
    )
    link_media(media, row)
    return row
