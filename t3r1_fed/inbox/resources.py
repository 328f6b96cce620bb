"""Remote files: resources (Mobilizon/t3r1 `Document`, `Image`) and attachments of posts.

When a remote object is stored or updated (coops/kinds.py ingest hooks):
- each attachment (and, for a `Document`/`Image` without attachments, its `url`, as
  Mobilizon sends it) becomes a `media` row that only *references* the remote file
  (`remote_url`): we never fetch, cache or proxy remote files for now, so a hostile file is
  never decoded or served by us — clients load it from its origin;
- a `Document`/`Image` posted into a cooperative becomes a `resources` row in that
  cooperative, with our `category` term if valid and its folder (`context`, a
  `ResourceCollection`) when we know it or can fetch it from the group's host.

Folders (`ResourceCollection`, Mobilizon's shape) arrive as `Create` — relayed by the
group's `Announce`, or sent directly by the group or a member — and, from Mobilizon, as
`Add{object: folder, target: parent folder}` for a folder inside a folder. A copy is
trusted only when the group signed it and it lives on the group's host (as relayed
`Update`s are); otherwise the folder is refetched from the group's host. It must be
`attributedTo` the group; its parents (`context`) are fetched the same way, at most
MAX_FOLDER_DEPTH levels, and stored as `resource_folders` rows with their `parent_id`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.coops.kinds import on_ingest
from t3r1_fed.coops.resources import CATEGORIES, MAX_FOLDER_DEPTH, resources_url
from t3r1_fed.db.models import Actor, Follow, Object
from t3r1_fed.db.models_coops import Media, Resource, ResourceFolder
from t3r1_fed.federation.hosts import host_of
from t3r1_fed.federation.resolver import ResolveError, fetch_document
from t3r1_fed.inbox.collections import collections_of
from t3r1_fed.inbox.dispatch import Ignored, Inbound, handles
from t3r1_fed.media.storage import new_key
from t3r1_fed.vocab.normalize import Attachment, parse_object
from t3r1_fed.vocab.shapes import (
    MAX_ATTACHMENTS_PARSED,
    InvalidObject,
    best_link,
    id_of,
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


def _is_top(group: Actor, context: str) -> bool:
    """Is `context` the group's `resources` collection itself (no folder)?"""
    return (
        context == resources_url(group)
        or context.endswith("/resources")
        or context == collections_of(group).get("resources")
    )


async def remote_folder(
    ctx: Context,
    session: AsyncSession,
    group: Actor,
    uri: str | None,
    depth: int = 0,
    *,
    signed_copy: Mapping[str, Any] | None = None,
) -> ResourceFolder | None:
    """The folder `uri` of `group`: known, or fetched from the group's host with its
    parents (`context`), at most MAX_FOLDER_DEPTH levels; a folder whose parents are
    out of reach is filed at the top. None: no folder (the top, or not the group's).
    `signed_copy`: the folder as the group itself sent it (signed by it, on its host),
    used instead of a fetch for this level only."""
    if not uri or _is_top(group, uri):
        return None
    q = select(ResourceFolder).where(ResourceFolder.uri == uri)
    known = (await session.execute(q)).scalar()
    if known is not None:
        return known if known.coop_actor_id == group.id else None
    if depth >= MAX_FOLDER_DEPTH:
        return None
    try:
        if host_of(uri) != host_of(group.uri) or ctx.uris.is_local(uri):
            return None
        doc = signed_copy or await fetch_document(ctx, session, uri)
    except (ResolveError, ValueError):
        return None
    if id_of(doc) != uri:
        return None
    owner = ids_of(doc.get("attributedTo"))
    if doc.get("type") != "ResourceCollection" or group.uri not in owner:
        return None
    parent = await remote_folder(ctx, session, group, id_of(doc.get("context")), depth + 1)
    known = (await session.execute(q)).scalar()  # a cycle of parents came back to it
    if known is not None:
        return known if known.coop_actor_id == group.id else None
    folder = ResourceFolder(
        uri=uri,
        coop_actor_id=group.id,
        parent_id=parent.id if parent is not None else None,
        name=text_field(doc, "name", MAX_FOLDER_NAME) or "",
    )
    session.add(folder)
    await session.flush()
    return folder


async def _folder(
    ctx: Context, session: AsyncSession, group: Actor, context: str | None
) -> ResourceFolder | None:
    """The folder named by a resource's `context`: known, or fetched with its parents."""
    return await remote_folder(ctx, session, group, context)


async def _store_folder(
    inb: Inbound, group: Actor, uri: str | None, signed_copy: Mapping[str, Any] | None = None
) -> str:
    if group.local:
        raise Ignored("our cooperatives' folders are created here")
    if group.type != "Group":
        raise Ignored("a folder of an actor that is not a group")
    if not uri:
        raise Ignored("folder without id")
    q = select(ResourceFolder.id).where(ResourceFolder.uri == uri)
    if (await inb.session.execute(q)).first() is not None:
        return "folder already known"
    folder = await remote_folder(inb.ctx, inb.session, group, uri, signed_copy=signed_copy)
    if folder is None:
        raise Ignored("not a folder of this group, or out of reach")
    return "folder stored" + (" in its parent" if folder.parent_id is not None else "")


def _folder_activity(inner: Mapping[str, Any]) -> str | None:
    """The folder id of a `Create`/`Add` of a `ResourceCollection`, else None."""
    obj = inner.get("object")
    if inner.get("type") not in ("Create", "Add") or not isinstance(obj, Mapping):
        return None
    if obj.get("type") != "ResourceCollection":
        return None
    return id_of(obj) or ""


async def relayed_folder(inb: Inbound, announcer: Actor, inner: dict[str, Any]) -> str | None:
    """A group `Announce`d a `Create`/`Add` of a folder (called by inbox/content.py);
    None when `inner` is something else."""
    uri = _folder_activity(inner)
    if uri is None:
        return None
    # As for relayed Updates (inbox/content.py): a copy on the announcer's own host is
    # vouched for by the server a refetch would ask; any other is refetched.
    obj = inner.get("object")
    try:
        own = isinstance(obj, dict) and bool(uri) and host_of(uri) == host_of(announcer.uri)
    except ValueError:
        own = False
    return await _store_folder(inb, announcer, uri, obj if own and isinstance(obj, dict) else None)


@handles("Create", "ResourceCollection")
@handles("Add", "ResourceCollection")
async def on_folder(inb: Inbound) -> str:
    """A folder sent directly (by the group, or a member of a group followed here)."""
    uri = _folder_activity(inb.raw)
    obj = inb.act.object
    if uri is None or not isinstance(obj, dict):
        raise Ignored("folder without an embedded ResourceCollection")
    owners = ids_of(obj.get("attributedTo"))[:5]
    q = select(Actor).where(Actor.uri.in_(owners), Actor.type == "Group")
    group = (await inb.session.execute(q)).scalars().first()
    if group is None:
        raise Ignored("folder of a group unknown here")
    if not group.local:
        followed = (
            select(Follow.id)
            .join(Actor, Actor.id == Follow.follower_id)
            .where(
                Follow.followee_id == group.id,
                Follow.state == "accepted",
                Actor.local.is_(True),
            )
        )
        if (await inb.session.execute(followed)).first() is None:
            raise Ignored("folder of a group nobody here follows")
    # Sent (and signed) by the group itself: its copy is its origin's word, as a fetch
    # would give it; anyone else's copy is refetched.
    own = inb.act.actor == group.uri
    return await _store_folder(inb, group, uri, obj if own else None)


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
