"""Create, Update, Delete and Announce handlers: content in, cooperatives redistribute."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.coops.posting import PostRefused, accept_post, coop_for_actor
from t3r1_fed.coops.redistribute import announce_delete, announce_update
from t3r1_fed.db.models import Actor, Follow, Object, Share, utcnow
from t3r1_fed.federation.hosts import host_of
from t3r1_fed.federation.resolver import ResolveError, get_actor
from t3r1_fed.inbox.dispatch import ACTOR_TYPES, ANY, Ignored, Inbound, handles
from t3r1_fed.inbox.forum import thread_group
from t3r1_fed.inbox.objects import (
    Refused,
    fetch_remote_object,
    parse_content,
    resolve_object,
    stored_object,
    upsert_object,
)
from t3r1_fed.inbox.polls import take_vote
from t3r1_fed.outbox.publish import publish
from t3r1_fed.vocab.normalize import RemoteObject, id_of


async def _local_groups(session: AsyncSession, uris: set[str]) -> list[Actor]:
    if not uris:
        return []
    q = select(Actor).where(
        Actor.uri.in_(uris),
        Actor.local.is_(True),
        Actor.type == "Group",
        Actor.deleted_at.is_(None),
    )
    return list((await session.execute(q)).scalars())


async def _relevant(inb: Inbound, obj: RemoteObject, author: Actor) -> bool:
    """Do we keep this object at all? (addressed to, mentioning or followed by us)."""
    addressed = set(obj.to) | set(obj.cc) | set(obj.audience)
    addressed |= {t.href for t in obj.tags if t.type == "Mention" and t.href}
    if any(inb.ctx.uris.is_local(a) for a in addressed):
        return True
    if obj.in_reply_to and inb.ctx.uris.is_local(obj.in_reply_to):
        return True
    q = (
        select(Follow.id)
        .join(Actor, Actor.id == Follow.follower_id)
        .where(Follow.followee_id == author.id, Follow.state == "accepted", Actor.local.is_(True))
    )
    return (await inb.session.execute(q)).first() is not None


@handles("Create")
async def on_create(inb: Inbound) -> str:
    act, session, ctx = inb.act, inb.session, inb.ctx
    try:
        if isinstance(act.object, dict):
            obj = parse_content(act.object)
            raw = act.object
        elif act.object_id:
            obj, raw = await fetch_remote_object(ctx, session, act.object_id)
        else:
            raise Ignored("create without object")
    except Refused as e:
        raise Ignored(str(e)) from e
    if obj.attributed_to != act.actor and host_of(obj.attributed_to or "") != host_of(act.actor):
        raise Ignored("object author is not the actor")
    vote = await take_vote(inb, obj)  # a poll vote is counted, never stored as a post
    if vote is not None:
        return vote
    try:
        author = await get_actor(ctx, session, obj.attributed_to or act.actor)
    except ResolveError as e:
        raise Ignored(f"author unavailable: {e}") from e
    addressed = set(obj.to) | set(obj.cc) | set(obj.audience)
    addressed |= {t.href for t in obj.tags if t.type == "Mention" and t.href}
    groups = await _local_groups(session, addressed)
    if not groups:
        # A reply not addressing the group (Mastodon): its context, or its inReplyTo chain
        # (missing parents fetched, bounded) — inbox/forum.py.
        parent_group = await thread_group(ctx, session, obj)
        groups = [parent_group] if parent_group is not None else []
    if not groups and not await _relevant(inb, obj, author):
        raise Ignored("not addressed to anyone here")
    try:
        row = await upsert_object(ctx, session, obj, raw)
    except Refused as e:
        raise Ignored(str(e)) from e
    await session.flush()
    done = []
    for group in groups:
        coop = await coop_for_actor(session, group.id)
        if coop is None:
            continue
        try:
            await accept_post(ctx, session, group, coop, act.raw, row, author)
            done.append(group.username)
        except PostRefused as e:
            await _reject_post(inb, group, str(e), author)
    return f"stored {obj.type}" + (f", redistributed by {', '.join(done)}" if done else "")


async def _reject_post(inb: Inbound, group: Actor, reason: str, author: Actor) -> None:
    reject = {
        "id": inb.ctx.uris.activity(),
        "type": "Reject",
        "actor": group.uri,
        "object": inb.act.id,
        "to": [author.uri],
        "summary": reason,
    }
    await publish(inb.ctx, inb.session, group, reject, recipients=[author])


@handles("Update", "Note", "Article", "Page", "Question")
async def on_update_object(inb: Inbound) -> str:
    act, session = inb.act, inb.session
    assert isinstance(act.object, dict)
    stored = await stored_object(session, act.object_id or "")
    if stored is None:
        raise Ignored("update of an unknown object")
    actor = (await session.execute(select(Actor).where(Actor.uri == act.actor))).scalar()
    if actor is None or stored.author_id != actor.id:
        raise Ignored("update by someone other than the author")
    try:
        obj = parse_content(act.object)
        await upsert_object(inb.ctx, session, obj, act.object)
    except Refused as e:
        raise Ignored(str(e)) from e
    await _announce_in_group(inb, stored, deleting=False)
    return "updated"


@handles("Update", *sorted(ACTOR_TYPES))
async def on_update_actor(inb: Inbound) -> str:
    if inb.act.object_id != inb.act.actor:
        raise Ignored("actor update of another actor")
    try:
        await get_actor(inb.ctx, inb.session, inb.act.actor, refresh=True)
    except ResolveError as e:
        raise Ignored(str(e)) from e
    actor = (await inb.session.execute(select(Actor).where(Actor.uri == inb.act.actor))).scalar()
    if actor is not None and actor.key_id:
        inb.ctx.key_cache.pop(actor.key_id, None)
    return "actor refreshed"


async def _announce_in_group(inb: Inbound, obj: Object, *, deleting: bool) -> None:
    if obj.group_id is None:
        return
    group = (
        await inb.session.execute(
            select(Actor).where(Actor.id == obj.group_id, Actor.local.is_(True))
        )
    ).scalar()
    if group is None:
        return
    coop = await coop_for_actor(inb.session, group.id)
    if coop is None:
        return
    if deleting:
        await announce_delete(inb.ctx, inb.session, group, coop, inb.act.raw, obj)
    else:
        await announce_update(inb.ctx, inb.session, group, coop, inb.act.raw)


async def delete_actor(session: AsyncSession, actor: Actor) -> None:
    actor.deleted_at = utcnow()
    await session.execute(
        delete(Follow).where((Follow.follower_id == actor.id) | (Follow.followee_id == actor.id))
    )
    await session.execute(
        update(Object)
        .where(Object.author_id == actor.id, Object.deleted_at.is_(None))
        .values(deleted_at=utcnow(), content=None)
    )


@handles("Delete")
async def on_delete(inb: Inbound) -> str:
    act, session = inb.act, inb.session
    oid = act.object_id
    actor = (await session.execute(select(Actor).where(Actor.uri == act.actor))).scalar()
    if actor is None or actor.local:
        raise Ignored("delete from an unknown actor")
    if oid == act.actor:
        await delete_actor(session, actor)
        if actor.key_id:
            inb.ctx.key_cache.pop(actor.key_id, None)
        return "actor deleted"
    obj = await stored_object(session, oid or "")
    if obj is None:
        from t3r1_fed.inbox.folders import direct_folder_change

        folder = await direct_folder_change(inb)  # a group deletes one of its folders
        if folder is not None:
            return folder
    if obj is None or obj.deleted_at is not None:
        raise Ignored("delete of an unknown object")
    if obj.author_id != actor.id:  # a moderator of one of our cooperatives, or nobody
        from t3r1_fed.inbox.group_actions import moderator_delete

        return await moderator_delete(inb, actor, obj)
    obj.deleted_at = utcnow()
    obj.content = None
    await _announce_in_group(inb, obj, deleting=True)
    return "object deleted"


# ---- Announce ---------------------------------------------------------------------------

INNER_ACTIVITIES = frozenset(
    {
        "Create",
        "Update",
        "Delete",
        "Undo",
        "Like",
        "Dislike",
        "Add",
        "Remove",
        "Block",
        "Lock",
        "Flag",
        "Announce",
        "Follow",
        "Move",  # a folder moved (Mobilizon; inbox/folders.py)
    }
)


async def _we_follow(session: AsyncSession, actor: Actor) -> bool:
    q = (
        select(Follow.id)
        .join(Actor, Actor.id == Follow.follower_id)
        .where(
            Follow.followee_id == actor.id, Follow.state == "accepted", Actor.local.is_(True)
        )
    )
    return (await session.execute(q)).first() is not None


async def _record_share(session: AsyncSession, uri: str, announcer: Actor, obj: Object) -> bool:
    exists = (
        await session.execute(
            select(Share.id).where(Share.actor_id == announcer.id, Share.object_id == obj.id)
        )
    ).first()
    if exists:
        return False
    session.add(Share(uri=uri, actor_id=announcer.id, object_id=obj.id))
    return True


def _same_origin_copy(
    announcer: Actor, inner_obj: Any, oid: str
) -> tuple[RemoteObject, dict[str, Any]] | None:
    """The embedded object of a relayed activity when the announcer's server is its origin.

    Used for relayed `Update`s: the Announce is signed by the announcer, so an object on
    the announcer's own host is vouched for by the server a refetch would ask; using it
    keeps every version of a fast series of edits (a refetch only ever sees the latest,
    and collaborative documents keep a history). Copies from any other host are never
    trusted (None: refetch from the origin)."""
    if not isinstance(inner_obj, dict):
        return None
    try:
        if host_of(oid) != host_of(announcer.uri):
            return None
    except ValueError:
        return None
    return parse_content(inner_obj), inner_obj


async def _announced_activity(inb: Inbound, announcer: Actor, inner: dict[str, Any]) -> str:
    """FEP-1b12: a group relays an activity. Trust nothing relayed from another host:
    objects are refetched from their origin (CVE-2022-24307)."""
    kind = inner.get("type")
    inner_obj = inner.get("object")
    oid = id_of(inner_obj)
    from t3r1_fed.inbox.moderation import relayed_moderation

    moderated = await relayed_moderation(inb, announcer, inner)  # checks the moderator
    if moderated is not None:
        return moderated
    from t3r1_fed.inbox.resources import relayed_folder

    folder = await relayed_folder(inb, announcer, inner)  # Create/Add{ResourceCollection}
    if folder is not None:
        return folder
    from t3r1_fed.inbox.folders import relayed_folder_change

    changed = await relayed_folder_change(inb, announcer, inner)  # Update/Move/Delete
    if changed is not None:
        return changed
    if kind == "Create" and oid:
        try:
            obj = await resolve_object(inb.ctx, inb.session, oid, group=announcer)
        except Refused as e:
            raise Ignored(str(e)) from e
        new = await _record_share(inb.session, inb.act.id, announcer, obj)
        return "announced post stored" if new else "announced post already known"
    if kind == "Update" and oid:
        stored = await stored_object(inb.session, oid)
        if stored is None:
            raise Ignored("announced update of an unknown object")
        try:
            copy = _same_origin_copy(announcer, inner_obj, oid)
            fresh, raw = copy or await fetch_remote_object(inb.ctx, inb.session, oid)
            await upsert_object(inb.ctx, inb.session, fresh, raw)
        except Refused as e:
            raise Ignored(str(e)) from e
        return "announced update applied"
    if kind == "Delete" and oid:
        stored = await stored_object(inb.session, oid)
        if stored is None or stored.deleted_at is not None:
            raise Ignored("announced delete of an unknown object")
        try:
            await fetch_remote_object(inb.ctx, inb.session, oid)
        except Refused:
            stored.deleted_at = utcnow()  # gone at its origin: the deletion is real
            stored.content = None
            return "announced delete applied"
        raise Ignored("announced delete, but the object still exists at its origin")
    raise Ignored(f"announced {kind} not handled")


@handles("Announce", ANY)
async def on_announce(inb: Inbound) -> str:
    act, session = inb.act, inb.session
    announcer = (await session.execute(select(Actor).where(Actor.uri == act.actor))).scalar()
    if announcer is None:
        try:
            announcer = await get_actor(inb.ctx, session, act.actor)
        except ResolveError as e:
            raise Ignored(f"actor unavailable: {e}") from e
    boosts_local = bool(act.object_id and inb.ctx.uris.is_local(act.object_id))
    if not boosts_local and not await _we_follow(session, announcer):
        raise Ignored("announce from an actor nobody here follows")
    obj = act.object
    if isinstance(obj, dict) and obj.get("type") in INNER_ACTIVITIES:
        return await _announced_activity(inb, announcer, obj)
    oid = act.object_id
    if not oid:
        raise Ignored("announce without object")
    if boosts_local:
        local = await stored_object(session, oid)
        if local is None or local.deleted_at is not None:
            raise Ignored("announce of an unknown local object")
        await _record_share(session, act.id, announcer, local)
        return "boost of a local object"
    try:
        stored = await resolve_object(
            inb.ctx, session, oid, group=announcer if announcer.type == "Group" else None
        )
    except Refused as e:
        raise Ignored(str(e)) from e
    new = await _record_share(session, act.id, announcer, stored)
    return "boost stored" if new else "boost already known"
