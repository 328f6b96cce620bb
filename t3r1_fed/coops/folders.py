"""Renaming, moving and deleting a local cooperative's folders (issue #3, files).

Who may: the cooperative's moderators and admins; for a rename or a move, also the member
who made the folder (while still a member). Deleting is for moderators and admins only:
an empty folder at once, a folder with files or sub-folders only when asked `recursive`
(its files are deleted as a moderator deletes posts, then its sub-folders).

Federation, Mobilizon's shapes (lib/federation/activity_pub/types/resources.ex):
- rename: `Update{ResourceCollection}` with the new `name`;
- move: `Move{object: ResourceCollection (its new `context`), origin: old parent,
  target: new parent}` — a parent is a folder, or the cooperative's `resources`
  collection for the top;
- delete: `Delete{Tombstone{formerType: ResourceCollection}}`; receivers drop the folder,
  its sub-folders and their files (Mobilizon deletes folders recursively too).
Each is by the member who acted, addressed like the cooperative's content, stored under
their name and delivered through the cooperative's `Announce` only (as folder creation,
coops/resources.py). Receivers: inbox/folders.py.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.coops.access import is_banned
from t3r1_fed.coops.redistribute import announce_update, group_audience, now_iso
from t3r1_fed.coops.resources import (
    MAX_FOLDER_DEPTH,
    ResourceError,
    _clean_name,
    folder_depth,
    folder_json,
    resources_url,
)
from t3r1_fed.coops.roles import coop_of, is_moderator, role_of
from t3r1_fed.db.models import Actor, Coop, Object
from t3r1_fed.db.models_coops import Media, Resource, ResourceFolder
from t3r1_fed.outbox.publish import publish
from t3r1_fed.vocab.context import AS_CONTEXT


async def folder_by_ref(session: AsyncSession, group: Actor, ref: str) -> ResourceFolder:
    """A folder of `group` by its URL, or by its name when only one folder bears it."""
    if ref.startswith(("http://", "https://")):
        q = select(ResourceFolder).where(ResourceFolder.uri == ref)
    else:
        q = select(ResourceFolder).where(ResourceFolder.name == _clean_name(ref))
    rows = list((await session.execute(
        q.where(ResourceFolder.coop_actor_id == group.id).limit(2))).scalars())
    if not rows:
        raise ResourceError(f"no such folder in this cooperative: {ref}")
    if len(rows) > 1:
        raise ResourceError(f"several folders are named {ref!r}: give the folder's URL")
    return rows[0]


async def subtree(session: AsyncSession, folder: ResourceFolder) -> list[list[int]]:
    """The ids of `folder` and its sub-folders, level by level (bounded by the depth cap)."""
    levels = [[folder.id]]
    while levels[-1] and len(levels) <= MAX_FOLDER_DEPTH:
        q = select(ResourceFolder.id).where(ResourceFolder.parent_id.in_(levels[-1]))
        levels.append(list((await session.execute(q)).scalars()))
    return [lvl for lvl in levels if lvl]


async def ancestors(session: AsyncSession, folder: ResourceFolder | None) -> list[int]:
    """Ids of `folder` and its parents up to the top (bounded)."""
    out: list[int] = []
    current = folder.id if folder is not None else None
    while current is not None and len(out) <= MAX_FOLDER_DEPTH + 1:
        out.append(current)
        q = select(ResourceFolder.parent_id).where(ResourceFolder.id == current)
        current = (await session.execute(q)).scalar()
    return out


async def check_move(
    session: AsyncSession, folder: ResourceFolder, parent: ResourceFolder | None
) -> None:
    """No cycle (into itself or one of its sub-folders), and the depth cap kept."""
    if parent is None:
        return
    if folder.id in await ancestors(session, parent):
        raise ResourceError("a folder cannot move into itself or one of its sub-folders")
    height = len(await subtree(session, folder))
    if await folder_depth(session, parent) + height > MAX_FOLDER_DEPTH:
        raise ResourceError(f"folders nest at most {MAX_FOLDER_DEPTH} deep")


async def _sibling_named(
    session: AsyncSession, group: Actor, name: str, parent_id: int | None, but: int
) -> bool:
    q = select(ResourceFolder.id).where(
        ResourceFolder.coop_actor_id == group.id,
        ResourceFolder.name == name,
        ResourceFolder.id != but,
        ResourceFolder.parent_id == parent_id
        if parent_id is not None
        else ResourceFolder.parent_id.is_(None),
    )
    return (await session.execute(q)).first() is not None


async def _may_change(
    session: AsyncSession, group: Actor, actor: Actor, folder: ResourceFolder, *, creator_too: bool
) -> Coop:
    coop = await coop_of(session, group)
    if folder.coop_actor_id != group.id:
        raise ResourceError("the folder belongs to another cooperative")
    if await is_banned(session, group.id, actor.id):
        raise ResourceError("banned from this cooperative")
    if await is_moderator(session, group.id, actor.id):
        return coop
    if creator_too and folder.creator_id == actor.id:
        if await role_of(session, group.id, actor.id) is not None:
            return coop
    raise ResourceError(
        "only the cooperative's moderators and admins"
        + (" and the folder's creator" if creator_too else "")
        + " may do this"
    )


async def _parent_uri(session: AsyncSession, group: Actor, folder: ResourceFolder) -> str:
    parent = await session.get(ResourceFolder, folder.parent_id) if folder.parent_id else None
    return parent.uri if parent is not None else resources_url(group)


async def _send(
    ctx: Context,
    session: AsyncSession,
    actor: Actor,
    group: Actor,
    coop: Coop,
    kind: str,
    obj: dict[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    to, cc = group_audience(group, coop)
    activity = {
        "@context": AS_CONTEXT,
        "id": ctx.uris.activity(),
        "type": kind,
        "actor": actor.uri,
        "object": obj,
        **extra,
        "to": to,
        "cc": [*cc, group.uri],
        "published": now_iso(),
    }
    # Stored under the member's name (dereferenceable), delivered through the cooperative.
    await publish(ctx, session, actor, activity, public=not coop.private)
    await announce_update(ctx, session, group, coop, activity)
    return activity


async def _document(
    session: AsyncSession, group: Actor, coop: Coop, actor: Actor, folder: ResourceFolder
) -> dict[str, Any]:
    to, cc = group_audience(group, coop)
    return {
        **folder_json(group, folder, await _parent_uri(session, group, folder)),
        "actor": actor.uri,
        "updated": now_iso(),
        "to": to,
        "cc": cc,
    }


async def rename_folder(
    ctx: Context,
    session: AsyncSession,
    actor: Actor,
    group: Actor,
    folder: ResourceFolder,
    name: str,
) -> ResourceFolder:
    """Rename a folder: `Update{ResourceCollection}` announced by the cooperative."""
    coop = await _may_change(session, group, actor, folder, creator_too=True)
    name = _clean_name(name)
    if name == folder.name:
        return folder
    if await _sibling_named(session, group, name, folder.parent_id, folder.id):
        raise ResourceError(f"a folder named {name!r} already exists here")
    folder.name = name
    await session.flush()
    doc = await _document(session, group, coop, actor, folder)
    await _send(ctx, session, actor, group, coop, "Update", doc)
    return folder


async def move_folder(
    ctx: Context,
    session: AsyncSession,
    actor: Actor,
    group: Actor,
    folder: ResourceFolder,
    parent: ResourceFolder | None,
) -> ResourceFolder:
    """Move a folder into `parent` (None: the top): Mobilizon's `Move`."""
    coop = await _may_change(session, group, actor, folder, creator_too=True)
    if parent is not None and parent.coop_actor_id != group.id:
        raise ResourceError("the new parent folder belongs to another cooperative")
    new_parent_id = parent.id if parent is not None else None
    if new_parent_id == folder.parent_id:
        return folder
    await check_move(session, folder, parent)
    if await _sibling_named(session, group, folder.name, new_parent_id, folder.id):
        raise ResourceError(f"a folder named {folder.name!r} already exists there")
    origin = await _parent_uri(session, group, folder)
    folder.parent_id = new_parent_id
    await session.flush()
    doc = await _document(session, group, coop, actor, folder)
    await _send(ctx, session, actor, group, coop, "Move", doc, origin=origin,
                target=doc["context"])
    return folder


async def delete_folder(
    ctx: Context,
    session: AsyncSession,
    actor: Actor,
    group: Actor,
    folder: ResourceFolder,
    *,
    recursive: bool = False,
    reason: str | None = None,
) -> int:
    """A moderator deletes a folder: empty, or with everything in it when `recursive`.
    Returns how many files were deleted."""
    from t3r1_fed.coops.moderation import delete_post
    from t3r1_fed.media.upload import discard

    coop = await _may_change(session, group, actor, folder, creator_too=False)
    ids = [i for level in await subtree(session, folder) for i in level]
    files = list((await session.execute(
        select(Object).join(Resource, Resource.object_id == Object.id).where(
            Resource.folder_id.in_(ids), Object.deleted_at.is_(None))
    )).scalars())
    if not recursive and (len(ids) > 1 or files):
        raise ResourceError(
            f"the folder is not empty ({len(ids) - 1} sub-folders, {len(files)} files): "
            "delete it recursively (moderators only)"
        )
    for obj in files:
        # and the Note that announced it to Mastodon (coops/resources.py), which carries it
        companions = (await session.execute(
            select(Object.uri).where(
                Object.author_id == obj.author_id,
                Object.group_id == group.id,
                Object.kind == "post",
                Object.type == "Note",
                Object.deleted_at.is_(None),
                Object.raw.contains(f'"{obj.uri}', autoescape=True),
            )
        )).scalars().all()
        for uri in [obj.uri, *companions]:
            await delete_post(ctx, session, actor, group, uri, reason)
        media = list((await session.execute(
            select(Media).where(Media.object_id == obj.id))).scalars())
        for m in media:
            await discard(ctx, m)
            await session.delete(m)
    folder_uri = folder.uri
    # Deepest first: children never outlive their parent, whatever the FK pragmas.
    for level in reversed(await subtree(session, folder)):
        await session.execute(delete(ResourceFolder).where(ResourceFolder.id.in_(level)))
    await session.flush()
    tomb = {"id": folder_uri, "type": "Tombstone", "formerType": "ResourceCollection",
            "deleted": now_iso()}
    extra: dict[str, Any] = {"summary": reason} if reason else {}
    await _send(ctx, session, actor, group, coop, "Delete", tomb, **extra)
    return len(files)

