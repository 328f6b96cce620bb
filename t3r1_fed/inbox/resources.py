"""Remote files: resources (Mobilizon/t3r1 `Document`, `Image`) and attachments of posts.

When a remote object is stored or updated (coops/kinds.py ingest hooks):
- each attachment (and, for a `Document`/`Image` without attachments, its `url`, as
  Mobilizon sends it) becomes a `media` row that only *references* the remote file
  (`remote_url`): we never fetch, cache or proxy remote files for now, so a hostile file is
  never decoded or served by us — clients load it from its origin;
- a `Document`/`Image` posted into a cooperative becomes a `resources` row in that
  cooperative, with our `category` term if valid and its folder (`context`, a
  `ResourceCollection`) when we know it or can fetch it from the group's host.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.coops.kinds import on_ingest
from t3r1_fed.coops.resources import CATEGORIES, resources_url
from t3r1_fed.db.models import Actor, Object
from t3r1_fed.db.models_coops import Media, Resource, ResourceFolder
from t3r1_fed.federation.hosts import host_of
from t3r1_fed.federation.resolver import ResolveError, fetch_document
from t3r1_fed.media.storage import new_key
from t3r1_fed.vocab.normalize import Attachment, parse_object
from t3r1_fed.vocab.shapes import (
    MAX_ATTACHMENTS_PARSED,
    InvalidObject,
    best_link,
    ids_of,
    media_type_of,
    text_field,
)

RESOURCE_TYPES: Final = ("Document", "Image")
CONTENT_TYPES: Final = ("Note", "Article", "Page", "Question", "Event", "Video", "Audio")
MAX_FOLDER_NAME: Final = 255


async def _group_of(session: AsyncSession, row: Object, raw: Mapping[str, Any]) -> Actor | None:
    """The cooperative a remote resource belongs to: the one it was filed under, its author
    when that is a Group (Mobilizon: `attributedTo` the group), or a known Group it names
    in `audience`/`to`/`cc`."""
    if row.group_id is not None:
        return await session.get(Actor, row.group_id)
    author = await session.get(Actor, row.author_id)
    if author is not None and author.type == "Group":
        return author
    named = [u for k in ("audience", "to", "cc") for u in ids_of(raw.get(k))][:50]
    if not named:
        return None
    q = select(Actor).where(Actor.uri.in_(named), Actor.type == "Group")
    return (await session.execute(q)).scalars().first()


async def _folder(
    ctx: Context, session: AsyncSession, group: Actor, context: str | None
) -> ResourceFolder | None:
    """The folder named by a resource's `context`: known, or fetched once (one level)."""
    if not context or context == resources_url(group) or context.endswith("/resources"):
        return None
    q = select(ResourceFolder).where(ResourceFolder.uri == context)
    known = (await session.execute(q)).scalar()
    if known is not None:
        return known if known.coop_actor_id == group.id else None
    try:
        if host_of(context) != host_of(group.uri) or ctx.uris.is_local(context):
            return None
        doc = await fetch_document(ctx, session, context)
    except (ResolveError, ValueError):
        return None
    owner = ids_of(doc.get("attributedTo"))
    if doc.get("type") != "ResourceCollection" or group.uri not in owner:
        return None
    folder = ResourceFolder(
        uri=context,
        coop_actor_id=group.id,
        name=text_field(doc, "name", MAX_FOLDER_NAME) or "",
    )
    session.add(folder)
    await session.flush()
    return folder


def _files(row: Object, raw: Mapping[str, Any]) -> list[Attachment]:
    try:
        files = list(parse_object(raw).attachments)
    except InvalidObject:
        return []
    url = best_link(raw.get("url"))
    if not files and row.type in RESOURCE_TYPES and url and url != row.uri:
        media_type = media_type_of(raw.get("mediaType"))
        files = [Attachment(url, media_type, row.name, row.type, None, None, None)]
    return files[:MAX_ATTACHMENTS_PARSED]


@on_ingest(*RESOURCE_TYPES, *CONTENT_TYPES)
async def ingest_files(
    ctx: Context, session: AsyncSession, row: Object, raw: Mapping[str, Any]
) -> None:
    if row.id is None:
        await session.flush()  # a new row needs its id
    # Replace the references on every update: the author's current list wins.
    await session.execute(
        delete(Media).where(Media.object_id == row.id, Media.remote_url.is_not(None))
    )
    files = _files(row, raw)
    if not files and row.type not in RESOURCE_TYPES:
        return
    group = await _group_of(session, row, raw)
    for f in files:
        session.add(
            Media(
                key=new_key("ref"),
                owner_id=row.author_id,
                coop_actor_id=group.id if group is not None else None,
                object_id=row.id,
                media_type=(f.media_type or "application/octet-stream")[:128],
                width=f.width,
                height=f.height,
                description=f.name,
                remote_url=f.url,
                blurhash=f.blurhash,
            )
        )
    if row.type not in RESOURCE_TYPES or group is None:
        return
    category = raw.get("category")
    if category not in CATEGORIES:
        category = "photo" if row.type == "Image" else "other"
    folder = await _folder(ctx, session, group, row.context)
    res = await session.get(Resource, row.id)
    if res is None:
        res = Resource(object_id=row.id, coop_actor_id=group.id)
        session.add(res)
    res.category = str(category)
    res.folder_id = folder.id if folder is not None else None
