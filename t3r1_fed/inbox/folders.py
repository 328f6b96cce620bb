"""Remote cooperatives' folders renamed, moved or deleted (coops/folders.py sends them).

Accepted only from the group that owns the folder: in its `Announce` (inbox/content.py
calls `relayed_folder_change`), or sent by the group itself. Each change must be about a
folder we filed under that group, living on the group's host:
- `Update{ResourceCollection}` (rename) and `Move{ResourceCollection}` (new `context`):
  the copy the group vouched for (signed by it, on its host) gives the new name and
  parent; the new parent is found or fetched like any folder (inbox/resources.py), a
  cycle or a chain deeper than MAX_FOLDER_DEPTH is refused. An unknown folder is simply
  stored as it now is.
- `Delete` (Tombstone, bare id or the folder itself): the folder, its sub-folders and
  their files (the resources filed there) are dropped, as Mobilizon does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import delete, select, update

from t3r1_fed.coops.folders import check_move, subtree
from t3r1_fed.coops.resources import ResourceError
from t3r1_fed.db.models import Actor, Object, utcnow
from t3r1_fed.db.models_coops import Media, Resource, ResourceFolder
from t3r1_fed.federation.hosts import host_of
from t3r1_fed.federation.resolver import ResolveError, fetch_document
from t3r1_fed.inbox.dispatch import Ignored, Inbound, handles
from t3r1_fed.inbox.resources import MAX_FOLDER_NAME, remote_folder
from t3r1_fed.vocab.shapes import id_of, ids_of, text_field

CHANGES: Final = ("Update", "Move", "Delete")


async def _known(inb: Inbound, uri: str) -> ResourceFolder | None:
    q = select(ResourceFolder).where(ResourceFolder.uri == uri)
    return (await inb.session.execute(q)).scalar()


def _same_host(a: str, b: str) -> bool:
    try:
        return host_of(a) == host_of(b)
    except ValueError:
        return False


async def _is_folder_change(inb: Inbound, inner: Mapping[str, Any]) -> str | None:
    """The folder id `inner` changes, or None when it is about something else."""
    kind, obj = inner.get("type"), inner.get("object")
    uri = id_of(obj)
    if kind not in CHANGES or not uri:
        return None
    if isinstance(obj, Mapping) and obj.get("type") == "ResourceCollection":
        return uri
    if kind == "Delete" and await _known(inb, uri) is not None:
        return uri  # a Tombstone or a bare id of a folder we hold
    return None


async def _apply(inb: Inbound, group: Actor, inner: Mapping[str, Any], uri: str) -> str:
    if group.local:
        raise Ignored("our cooperatives' folders change here")
    if group.type != "Group" or not _same_host(uri, group.uri):
        raise Ignored("not a folder of this group")
    kind, obj = inner.get("type"), inner.get("object")
    folder = await _known(inb, uri)
    if folder is not None and folder.coop_actor_id != group.id:
        raise Ignored("not a folder of this group")
    if kind == "Delete":
        if folder is None:
            raise Ignored("delete of an unknown folder")
        return await _drop(inb, group, folder)
    # The group signed what carried this copy, and the folder lives on its host: the
    # copy is its origin's word (as for relayed Updates, inbox/content.py).
    doc: Mapping[str, Any]
    if isinstance(obj, Mapping) and id_of(obj) == uri:
        doc = obj
    else:
        try:
            doc = await fetch_document(inb.ctx, inb.session, uri)
        except ResolveError as e:
            raise Ignored(f"folder out of reach: {e}") from e
    if id_of(doc) != uri or doc.get("type") != "ResourceCollection":
        raise Ignored("not a folder")
    if group.uri not in ids_of(doc.get("attributedTo")):
        raise Ignored("not a folder of this group")
    if folder is None:
        stored = await remote_folder(inb.ctx, inb.session, group, uri, signed_copy=dict(doc))
        if stored is None:
            raise Ignored("not a folder of this group, or out of reach")
        return "folder stored"
    # Everything is checked before anything changes.
    name = text_field(doc, "name", MAX_FOLDER_NAME)
    parent = await remote_folder(inb.ctx, inb.session, group, id_of(doc.get("context")))
    parent_id = parent.id if parent is not None else None
    if parent_id != folder.parent_id:
        try:
            await check_move(inb.session, folder, parent)
        except ResourceError as e:
            raise Ignored(str(e)) from e
    done = []
    if name and name != folder.name:
        folder.name = name
        done.append("renamed")
    if parent_id != folder.parent_id:
        folder.parent_id = parent_id
        done.append("moved")
    return "folder " + (" and ".join(done) if done else "unchanged")


async def _drop(inb: Inbound, group: Actor, folder: ResourceFolder) -> str:
    s = inb.session
    levels = await subtree(s, folder)
    ids = [i for level in levels for i in level]
    files = list((await s.execute(
        select(Resource.object_id).where(
            Resource.folder_id.in_(ids), Resource.coop_actor_id == group.id)
    )).scalars())
    if files:
        await s.execute(
            update(Object)
            .where(Object.id.in_(files), Object.deleted_at.is_(None))
            .values(deleted_at=utcnow(), content=None)
        )
        # only references to remote files: nothing of ours to remove from storage
        await s.execute(delete(Media).where(Media.object_id.in_(files),
                                            Media.remote_url.is_not(None)))
    for level in reversed(levels):
        await s.execute(delete(ResourceFolder).where(ResourceFolder.id.in_(level)))
    return f"folder deleted ({len(ids) - 1} sub-folders, {len(files)} files)"


async def relayed_folder_change(
    inb: Inbound, announcer: Actor, inner: dict[str, Any]
) -> str | None:
    """A group `Announce`d an Update/Move/Delete of one of its folders (called by
    inbox/content.py); None when `inner` is something else."""
    uri = await _is_folder_change(inb, inner)
    if uri is None:
        return None
    return await _apply(inb, announcer, inner, uri)


async def direct_folder_change(inb: Inbound) -> str | None:
    """The same, sent directly: only the group itself may. None: not about a folder."""
    uri = await _is_folder_change(inb, inb.raw)
    if uri is None:
        return None
    q = select(Actor).where(Actor.uri == inb.act.actor)
    sender = (await inb.session.execute(q)).scalar()
    if sender is None or sender.type != "Group":
        raise Ignored("folder changes are taken from the group only, or via its Announce")
    return await _apply(inb, sender, inb.raw, uri)


@handles("Update", "ResourceCollection")
@handles("Move", "ResourceCollection")
@handles("Delete", "ResourceCollection")
async def on_folder_change(inb: Inbound) -> str:
    done = await direct_folder_change(inb)
    if done is None:
        raise Ignored("not a folder change")
    return done
