"""Inbound gaps in moderation and membership (issue #3):

- a remote moderator of one of *our* cooperatives deletes a post in it (Lemmy sends
  `Delete{actor: mod@B, object: post@C, summary}` to the community's inbox). The origin
  check lets a cross-host Delete through only when it is POSTed to a local cooperative's
  own inbox or to the shared inbox, as Lemmy does (inbox/origin.py); here it is honoured
  only if that cooperative (or the shared inbox) is the recipient, the object is in it
  and the actor is one of its moderators or admins (`coop_roles`). It then goes as a
  local moderator's deletion does: tombstone, the group's Announce of the Delete (with
  its summary) and the Undo of the group's boost;
- a remote group bans one of our members: `Block{actor: group or its moderator, object:
  our member, target: group}`, direct or relayed by the group's Announce → our member's
  follow of the group is removed. `Undo{Block}` restores nothing (they may follow again);
- `Undo{Join}` is a `Leave` (cooperatives and meetings).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from t3r1_fed.coops.moderators import is_group_moderator
from t3r1_fed.coops.posting import coop_for_actor
from t3r1_fed.coops.redistribute import announce_delete
from t3r1_fed.coops.roles import is_moderator
from t3r1_fed.db.models import Actor, Follow, Object, utcnow
from t3r1_fed.db.models_coops import EventRsvp
from t3r1_fed.inbox.dispatch import TABLE, Ignored, Inbound, handles
from t3r1_fed.inbox.social import local_actor
from t3r1_fed.outbox.publish import followers_of, publish
from t3r1_fed.vocab.context import AS_PUBLIC
from t3r1_fed.vocab.normalize import id_of, parse_activity
from t3r1_fed.vocab.sanitize import plain_text

MAX_REASON_CHARS = 1000


def _reason(activity: dict[str, Any]) -> str | None:
    return plain_text(str(activity.get("summary") or ""))[:MAX_REASON_CHARS] or None


# ---- a remote moderator's Delete in one of our cooperatives -------------------------------


async def moderator_delete(inb: Inbound, moderator: Actor, obj: Object) -> str:
    """`moderator` (remote, not the author) deletes `obj`; called by inbox/content.py's
    on_delete. Raises Ignored unless it is a moderation of a cooperative of ours sent to
    that cooperative's inbox by one of its moderators."""
    session = inb.session
    if obj.group_id is None:
        raise Ignored("delete by someone other than the author")
    group = await session.get(Actor, obj.group_id)
    if group is None or not group.local or group.deleted_at is not None:
        raise Ignored("delete by someone other than the author")
    if inb.recipient is not None and inb.recipient != group.uri:
        # To the shared inbox (Lemmy) or to this cooperative's inbox, not another's.
        raise Ignored("a moderator's delete must be sent to the cooperative's inbox")
    if not await is_moderator(session, group.id, moderator.id):
        raise Ignored(f"delete by {moderator.uri}, who is not a moderator of {group.uri}")
    coop = await coop_for_actor(session, group.id)
    if coop is None:
        raise Ignored("delete in a group that is not a cooperative")
    author = await session.get(Actor, obj.author_id) if obj.author_id is not None else None
    obj.deleted_at, obj.content, obj.removed_reason = utcnow(), None, _reason(inb.raw)
    await announce_delete(inb.ctx, session, group, coop, inb.raw, obj)
    if author is not None and author.local:
        # As for a local moderator (coops/moderation.py): our member's followers only take
        # a Delete signed by the author.
        tomb = {"id": inb.ctx.uris.activity(), "type": "Delete", "actor": author.uri,
                "object": {"id": obj.uri, "type": "Tombstone"}, "to": [AS_PUBLIC]}
        await publish(inb.ctx, session, author, tomb,
                      recipients=await followers_of(session, author.id), public=not coop.private)
    return "deleted by a remote moderator, announced by the group"


# ---- a remote group bans one of our members -----------------------------------------------


async def _remote_group(inb: Inbound, uri: str | None) -> Actor | None:
    if not uri or inb.ctx.uris.is_local(uri):
        return None
    found = (await inb.session.execute(select(Actor).where(Actor.uri == uri))).scalar()
    if found is None:
        return None  # a group nobody here follows: nothing to undo
    return found if found.type == "Group" and not found.local else None


async def _ban(inb: Inbound, group: Actor, actor: str, block: dict[str, Any]) -> str:
    """Check and apply `block` (by `actor`) of one of our members by the remote `group`."""
    target = id_of(block.get("target"))
    if target is not None and target != group.uri:
        raise Ignored("block with another target than the group")
    member = await local_actor(inb.session, id_of(block.get("object")))
    if member is None or member.type != "Person":
        raise Ignored("block of someone who is not a member here")
    # ModeratorsUnavailable (the collection cannot be fetched now) is retried by the worker.
    if not await is_group_moderator(inb.ctx, inb.session, group, actor):
        raise Ignored(f"block by {actor}, who is not a moderator of {group.uri}")
    res = await inb.session.execute(
        delete(Follow).where(Follow.follower_id == member.id, Follow.followee_id == group.id)
    )
    why = _reason(block)
    removed = "follow removed" if res.rowcount else "no follow to remove"  # type: ignore[attr-defined]
    return f"{member.username} banned from {group.uri}: {removed}" + (f" ({why})" if why else "")


async def relayed_block(inb: Inbound, announcer: Actor, inner: dict[str, Any]) -> str | None:
    """A group Announced a `Block` or `Undo{Block}` (called by inbox/moderation.py);
    None when `inner` is neither."""
    if announcer.type != "Group":
        return None
    actor = id_of(inner.get("actor"))
    if inner.get("type") == "Undo":
        obj = inner.get("object")
        if isinstance(obj, dict) and obj.get("type") == "Block":
            return "ban lifted: nothing to restore (the member may follow again)"
        return None
    if inner.get("type") != "Block":
        return None
    if not actor:
        raise Ignored("relayed block without actor")
    target = id_of(inner.get("target"))
    if target is not None and target != announcer.uri:
        raise Ignored("relayed block of another group")
    return await _ban(inb, announcer, actor, inner)


@handles("Block")
async def on_block(inb: Inbound) -> str:
    """A group (or one of its moderators) bans one of our members. A user's personal block
    (Mastodon) carries no group: nothing to do, we never tell."""
    sender = await _remote_group(inb, inb.act.actor)
    group = sender or await _remote_group(inb, inb.act.target)
    if group is None:
        raise Ignored("block by a user, or in a group nobody here follows")
    return await _ban(inb, group, inb.act.actor, inb.raw)


@handles("Undo", "Block")
async def on_undo_block(inb: Inbound) -> str:
    raw = inb.act.object if isinstance(inb.act.object, dict) else {}
    group = await _remote_group(inb, inb.act.actor) or await _remote_group(
        inb, id_of(raw.get("target")))
    if group is None:
        raise Ignored("undo of a block by a user, or in a group nobody here follows")
    return "ban lifted: nothing to restore (the member may follow again)"


# ---- Undo{Join} -------------------------------------------------------------------------


async def _participation(inb: Inbound) -> dict[str, Any]:
    row = (await inb.session.execute(
        select(EventRsvp).where(EventRsvp.uri == (inb.act.object_id or ""))
    )).scalar()
    actor = await inb.session.get(Actor, row.actor_id) if row is not None else None
    if row is None or actor is None or actor.uri != inb.act.actor:
        raise Ignored("nothing to undo")
    event = await inb.session.get(Object, row.event_id)
    assert event is not None
    return {"id": row.uri, "type": "Join", "actor": actor.uri, "object": event.uri}


@handles("Undo", "Join")
async def on_undo_join(inb: Inbound) -> str:
    """`Undo{Join}` is a `Leave` of the joined cooperative or meeting (origin checks made
    sure an embedded Join was the actor's own). By id only (inbox/social.py's on_undo hands
    over what it found nothing for): a participation filed under that Join's id, if the
    actor's (a membership's Join id is its Follow's: on_undo removed it already)."""
    join = inb.act.object
    if not isinstance(join, dict):
        join = await _participation(inb)
    leave = TABLE.get(("Leave", "Group"))
    if not id_of(join.get("object")):
        raise Ignored("undo of a join of nothing")
    if leave is None:
        raise Ignored("nothing handles Leave")
    doc = {"id": inb.act.id, "type": "Leave", "actor": inb.act.actor, "object": join.get("object")}
    return await leave(Inbound(inb.ctx, inb.session, parse_activity(doc), inb.recipient))

