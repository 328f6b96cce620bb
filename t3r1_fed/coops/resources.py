"""Files, templates and photos of a cooperative (issue #3 "Files and templates").

A resource is a `Document` (an `Image` for photos) posted into the cooperative through
`create_in_coop(kind="resource")`, Mobilizon's shape: `name`, `url` (the file, with its
`mediaType`), `context` (the folder — a `ResourceCollection` — or the cooperative's
`resources` collection), plus an `attachment` for parsers that read files there and our
`category` term (leaflet, letter, statutes, poster, photo, other).

Mastodon ignores `Document`, so in a public cooperative the upload is also announced by a
`Note` from the same author carrying the file as an attachment and a link to the resource.
FEP-1b12 peers get both (the Document files it in their copy of the resources; the Note is
the news item); the cooperative boosts only the Note (`Announce(object)`,
coops/redistribute.py skips resources), so Mastodon timelines show exactly one post.
Private cooperatives send no Note: Mastodon members could not see it anyway.

A new folder is federated like Mobilizon's: `Create{ResourceCollection}` by the member who
made it (`actor` the member, `attributedTo` the cooperative, `context` the parent folder or
the `resources` collection), addressed like the cooperative's content and announced by
the cooperative (`Announce{Create}`) to its followers; receivers refetch it (and its
parents, bounded) from the cooperative's host (inbox/resources.py).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.coops.access import is_banned
from t3r1_fed.coops.posting import create_in_coop, local_delete
from t3r1_fed.coops.redistribute import announce_update, group_audience
from t3r1_fed.coops.roles import coop_of, role_of
from t3r1_fed.db.models import Actor, Object, User, utcnow
from t3r1_fed.db.models_coops import Media, Resource, ResourceFolder
from t3r1_fed.media.attach import attachment_dict
from t3r1_fed.media.upload import discard, media_url, thumb_url, upload
from t3r1_fed.outbox.publish import publish
from t3r1_fed.uris import new_id
from t3r1_fed.vocab.context import AS_CONTEXT

CATEGORIES: Final = ("leaflet", "letter", "statutes", "poster", "photo", "other")
CATEGORY_LABELS: Final = {
    "leaflet": "tract",
    "letter": "modèle de lettre",
    "statutes": "statuts",
    "poster": "affiche",
    "photo": "photo",
    "other": "fichier",
}
MAX_NAME: Final = 255
# Nesting depth of folders (a folder at the top is depth 1); receivers follow as many
# parents (inbox/resources.py).
MAX_FOLDER_DEPTH: Final = 8


class ResourceError(ValueError):
    """A resource operation that is refused; the message says why."""


@dataclass(frozen=True)
class ResourceView:
    uri: str  # the Document/Image object
    name: str
    category: str
    folder: str | None  # the folder's name
    url: str  # the file (ours, or the remote server's)
    thumbnail_url: str | None
    media_type: str
    size: int
    width: int | None
    height: int | None
    filename: str | None
    author: str


def resources_url(group: Actor) -> str:
    return f"{group.uri}/resources"


def _clean_name(name: str) -> str:
    name = " ".join(name.split())
    if not name or len(name) > MAX_NAME:
        raise ResourceError(f"a name has 1 to {MAX_NAME} characters")
    return name


async def _require_member(session: AsyncSession, group: Actor, actor: Actor) -> None:
    if await is_banned(session, group.id, actor.id):
        raise ResourceError("banned from this cooperative")
    if await role_of(session, group.id, actor.id) is None:
        raise ResourceError("only members may manage the cooperative's files")


async def find_folder(session: AsyncSession, group: Actor, name: str) -> ResourceFolder | None:
    q = select(ResourceFolder).where(
        ResourceFolder.coop_actor_id == group.id, ResourceFolder.name == _clean_name(name)
    )
    return (await session.execute(q.order_by(ResourceFolder.id))).scalars().first()


async def create_folder(
    ctx: Context,
    session: AsyncSession,
    actor: Actor,
    group: Actor,
    name: str,
    *,
    parent: ResourceFolder | None = None,
) -> ResourceFolder:
    """A folder in a local cooperative (served as a Mobilizon `ResourceCollection`)."""
    await coop_of(session, group)
    await _require_member(session, group, actor)
    name = _clean_name(name)
    if parent is not None and parent.coop_actor_id != group.id:
        raise ResourceError("the parent folder belongs to another cooperative")
    exists = await session.execute(
        select(ResourceFolder.id).where(
            ResourceFolder.coop_actor_id == group.id,
            ResourceFolder.name == name,
            ResourceFolder.parent_id == parent.id
            if parent is not None
            else ResourceFolder.parent_id.is_(None),
        )
    )
    if exists.first() is not None:
        raise ResourceError(f"a folder named {name!r} already exists here")
    if parent is not None and await folder_depth(session, parent) >= MAX_FOLDER_DEPTH:
        raise ResourceError(f"folders nest at most {MAX_FOLDER_DEPTH} deep")
    folder = ResourceFolder(
        uri=f"{resources_url(group)}/{new_id()}",
        coop_actor_id=group.id,
        parent_id=parent.id if parent else None,
        name=name,
        creator_id=actor.id,
    )
    session.add(folder)
    await session.flush()
    coop = await coop_of(session, group)
    to, cc = group_audience(group, coop)
    doc = {
        **folder_json(group, folder, parent.uri if parent is not None else None),
        "actor": actor.uri,
        "to": to,
        "cc": cc,
    }
    create = {
        "@context": AS_CONTEXT,
        "id": ctx.uris.activity(),
        "type": "Create",
        "actor": actor.uri,
        "object": doc,
        "to": to,
        "cc": [*cc, group.uri],
        "published": doc["published"],
    }
    # Stored under the member's name (dereferenceable), delivered through the cooperative
    # only: a folder means nothing to the member's own followers.
    await publish(ctx, session, actor, create, public=not coop.private)
    await announce_update(ctx, session, group, coop, create)
    return folder


async def folder_depth(session: AsyncSession, folder: ResourceFolder) -> int:
    """1 for a folder at the top, 2 for one inside it …"""
    depth, parent_id = 1, folder.parent_id
    while parent_id is not None and depth <= MAX_FOLDER_DEPTH:
        depth += 1
        parent_id = (
            await session.execute(
                select(ResourceFolder.parent_id).where(ResourceFolder.id == parent_id)
            )
        ).scalar()
    return depth


def folder_json(group: Actor, folder: ResourceFolder, parent_uri: str | None) -> dict[str, Any]:
    """A folder as Mobilizon's `ResourceCollection` (without `@context`)."""
    return {
        "id": folder.uri,
        "type": "ResourceCollection",
        "name": folder.name,
        "attributedTo": group.uri,
        "context": parent_uri or resources_url(group),
        "published": (folder.created_at or utcnow()).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _announce_html(group: Actor, ctx: Context, doc_uri: str, name: str, category: str) -> str:
    mention = (
        f'<span class="h-card"><a href="{html.escape(group.url or group.uri)}" '
        f'class="u-url mention">@<span>{html.escape(group.username)}</span></a></span>'
    )
    label = CATEGORY_LABELS[category]
    return (
        f"<p>{mention} Nouveau {html.escape(label)} : "
        f'<a href="{html.escape(doc_uri)}">{html.escape(name)}</a></p>'
    )


async def upload_resource(
    ctx: Context,
    session: AsyncSession,
    author: Actor,
    group: Actor,
    data: bytes,
    *,
    filename: str | None = None,
    name: str | None = None,
    category: str = "other",
    folder: ResourceFolder | None = None,
    description: str | None = None,
) -> tuple[Object, Media]:
    """A member adds a file (template, photo …) to a local cooperative's resources.

    Returns the Document/Image object and its Media row. Raises ResourceError,
    UploadRefused (type, size, pixels) or PostRefused (the cooperative's posting rules).
    """
    coop = await coop_of(session, group)
    await _require_member(session, group, author)
    if category not in CATEGORIES:
        raise ResourceError(f"category must be one of {', '.join(CATEGORIES)}")
    if folder is not None and folder.coop_actor_id != group.id:
        raise ResourceError("the folder belongs to another cooperative")
    media = await upload(
        ctx, session, author, data, filename=filename, description=description,
        coop_actor_id=group.id,
    )  # fmt: skip
    try:
        is_image = media.media_type.startswith("image/")
        if category == "photo" and not is_image:
            raise ResourceError("a photo must be an image")
        title = _clean_name(name or media.filename or CATEGORY_LABELS[category])
        attachment = attachment_dict(ctx, media)
        doc = {
            "type": "Image" if is_image else "Document",
            "name": title,
            "mediaType": media.media_type,
            "url": media_url(ctx, media.key),
            "attachment": [attachment],
            "category": category,
            "sensitive": False,
        }
        if media.description:
            doc["content"] = f"<p>{html.escape(media.description)}</p>"
        context = folder.uri if folder is not None else resources_url(group)
        row = await create_in_coop(
            ctx, session, author, group, coop, doc, kind="resource", context=context
        )
        media.object_id = row.id
        session.add(
            Resource(
                object_id=row.id,
                coop_actor_id=group.id,
                folder_id=folder.id if folder else None,
                category=category,
            )
        )
        if not coop.private:
            note = {
                "type": "Note",
                "content": _announce_html(group, ctx, row.uri, title, category),
                "attachment": [attachment],
            }
            await create_in_coop(ctx, session, author, group, coop, note, kind="post")
        await session.flush()
    except Exception:
        await discard(ctx, media)
        raise
    return row, media


async def delete_resource(
    ctx: Context, session: AsyncSession, actor: Actor, object_uri: str
) -> None:
    """The author deletes a file of theirs: `Delete` of the Document/Image and of the Note
    that announced it (both announced by the group, the boost withdrawn), and the stored
    files removed. Moderator removal is moderation's `Delete`/`Remove`."""
    row = (
        await session.execute(select(Object).where(Object.uri == object_uri))
    ).scalar()
    if row is None or not row.local or row.kind != "resource" or row.deleted_at is not None:
        raise ResourceError("no such file")
    if row.author_id != actor.id:
        raise ResourceError("only the author may delete this file")
    user = (await session.execute(select(User).where(User.actor_id == actor.id))).scalar_one()
    media = list((await session.execute(select(Media).where(Media.object_id == row.id))).scalars())
    companions = (
        await session.execute(
            select(Object.uri).where(
                Object.author_id == actor.id,
                Object.group_id == row.group_id,
                Object.kind == "post",
                Object.type == "Note",
                Object.deleted_at.is_(None),
                Object.raw.contains(f'"{row.uri}', autoescape=True),
            )
        )
    ).scalars()
    for uri in [row.uri, *companions]:
        await local_delete(ctx, session, user.username, uri)
    for m in media:
        await discard(ctx, m)
        await session.delete(m)
    await session.flush()


async def list_resources(
    ctx: Context,
    session: AsyncSession,
    group: Actor,
    *,
    folder: ResourceFolder | None = None,
    category: str | None = None,
    limit: int = 100,
) -> list[ResourceView]:
    """Resources of a cooperative (local or remote), newest first. Access is the caller's
    concern (coops/access.py `can_read` for federation reads)."""
    q = (
        select(Resource, Object, Media, ResourceFolder.name, Actor.uri)
        .join(Object, Object.id == Resource.object_id)
        .join(Actor, Actor.id == Object.author_id)
        .join(Media, Media.object_id == Object.id)
        .outerjoin(ResourceFolder, ResourceFolder.id == Resource.folder_id)
        .where(
            Resource.coop_actor_id == group.id,
            Object.deleted_at.is_(None),
            Object.removed_at.is_(None),
        )
    )
    if folder is not None:
        q = q.where(Resource.folder_id == folder.id)
    if category is not None:
        q = q.where(Resource.category == category)
    rows = (await session.execute(q.order_by(Object.id.desc(), Media.id).limit(limit))).all()
    seen: set[int] = set()
    views: list[ResourceView] = []
    for res, obj, media, folder_name, author in rows:
        if obj.id in seen:  # one line per resource: its first file
            continue
        seen.add(obj.id)
        views.append(
            ResourceView(
                uri=obj.uri,
                name=obj.name or media.filename or "",
                category=res.category,
                folder=folder_name,
                url=media.remote_url or media_url(ctx, media.key),
                thumbnail_url=thumb_url(ctx, media),
                media_type=media.media_type,
                size=media.size,
                width=media.width,
                height=media.height,
                filename=media.filename,
                author=author,
            )
        )
    return views


async def list_photos(
    ctx: Context, session: AsyncSession, group: Actor, *, limit: int = 100
) -> list[ResourceView]:
    """The cooperative's photo library (resources of category `photo`, with thumbnails)."""
    return await list_resources(ctx, session, group, category="photo", limit=limit)


async def list_folders(session: AsyncSession, group: Actor) -> list[ResourceFolder]:
    q = select(ResourceFolder).where(ResourceFolder.coop_actor_id == group.id)
    return list((await session.execute(q.order_by(ResourceFolder.name))).scalars())
