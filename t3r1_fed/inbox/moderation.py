"""Moderation activities received: relayed by a group (FEP-1b12), sent by a group itself,
and reports (`Flag`).

A moderation activity about a group's content — a moderator's `Delete` of someone else's
post, `Remove` of a thread, `Lock` / `Undo{Lock}`, `Add` / `Remove` on `featured` or
`moderators` — is honoured only when
- the group itself sends it (signed by the group), or
- the group `Announce`s it and its inner actor is in the group's moderators collection
  (fetched signed from the group's host, cached briefly: coops/moderators.py),
and the object belongs to that group. A moderation activity sent directly by anyone else
about a remote group's content is ignored. A remote moderator of one of *our*
cooperatives may send `Lock`, `Remove` and `Add`/`Remove featured` to it directly: we check
`coop_roles`, apply it, and the group announces it (a `Delete` of a post from another host,
and bans of our members by a remote group, direct or relayed: inbox/group_actions.py).

`Add`/`Remove` reach this module through inbox/collections.py's router, registered for the
`featured` and `moderators` collections and for a group itself (`Remove` of a thread), so
no import order between feature modules matters.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from t3r1_fed.coops.flags import forward_flag, group_of_objects, store_flag
from t3r1_fed.coops.moderators import forget_moderators, is_group_moderator, moderators_url
from t3r1_fed.coops.posting import coop_for_actor
from t3r1_fed.coops.redistribute import announce_update
from t3r1_fed.db.models import Actor, Object, utcnow
from t3r1_fed.inbox.collections import ITSELF, on_collection
from t3r1_fed.inbox.dispatch import ANY, TABLE, Handler, Ignored, Inbound, handles
from t3r1_fed.inbox.objects import stored_object
from t3r1_fed.inbox.social import remote_actor
from t3r1_fed.vocab.normalize import id_of, ids_of
from t3r1_fed.vocab.sanitize import plain_text

MAX_REASON_CHARS = 1000
MAX_COMMENT_CHARS = 2000


def moderation_kind(inner: dict[str, Any]) -> str | None:
    """Delete | Remove | Lock | Add | Undo:Lock | Undo:Remove, or None (not moderation)."""
    t = inner.get("type")
    if t == "Undo":
        obj = inner.get("object")
        ot = obj.get("type") if isinstance(obj, dict) else None
        return f"Undo:{ot}" if ot in ("Lock", "Remove") else None
    return t if t in ("Delete", "Remove", "Lock", "Add") else None


def _collection(inb: Inbound, group: Actor, target: str | None) -> str | None:
    """'featured', 'moderators' or 'group' for an Add/Remove target of `group`."""
    if not target:
        return None
    featured = group.featured_url or inb.ctx.uris.sub(group.uri, "featured")
    mods = inb.ctx.uris.sub(group.uri, "moderators") if group.local else moderators_url(group)
    return {featured: "featured", mods: "moderators", group.uri: "group"}.get(target)


def _reason(activity: dict[str, Any]) -> str | None:
    text = plain_text(str(activity.get("summary") or ""))[:MAX_REASON_CHARS]
    return text or None


async def _group_object(inb: Inbound, group: Actor, oid: str | None) -> Object:
    obj = await stored_object(inb.session, oid or "")
    if obj is None:
        raise Ignored("moderation of an unknown object")
    if obj.group_id != group.id:
        raise Ignored("moderation of an object that is not in this group")
    return obj


def _classify(
    inb: Inbound, group: Actor, inner: dict[str, Any]
) -> tuple[str, str, str | None] | None:
    """(kind, what, object id) of a moderation activity about `group` — what: post |
    group (a thread removal) | featured | moderators — or None if it is none."""
    kind = moderation_kind(inner)
    if kind is None:
        return None
    target_act = inner["object"] if kind.startswith("Undo:") else inner
    what = "post"
    if kind in ("Add", "Remove", "Undo:Remove"):
        what = _collection(inb, group, id_of(target_act.get("target"))) or ""
        if not what or (what == "group" and kind == "Add"):
            return None  # another feature's collection (faq, resources …)
    return kind, what, id_of(target_act.get("object"))


async def _apply(inb: Inbound, group: Actor, actor: str, inner: dict[str, Any]) -> str | None:
    """Check and apply `inner` (by `actor`) to `group`'s content; None: not moderation."""
    classified = _classify(inb, group, inner)
    if classified is None:
        return None
    kind, what, oid = classified
    obj = None
    if kind == "Delete":
        stored = await stored_object(inb.session, oid or "")
        author_id = stored.author_id if stored is not None else None
        q = select(Actor.uri).where(Actor.id == author_id)
        author = (await inb.session.execute(q)).scalar()
        if stored is None or author == actor:
            return None  # unknown, or the author's own deletion: inbox/content.py decides
    if what in ("post", "group", "featured"):
        obj = await _group_object(inb, group, oid)
    if not await is_group_moderator(inb.ctx, inb.session, group, actor):
        raise Ignored(f"{kind} by {actor}, who is not a moderator of {group.uri}")
    now, reason = utcnow(), _reason(inner)
    if what == "moderators":
        forget_moderators(inb.ctx, group.uri)
        return f"moderators of {group.username} changed ({kind})"
    assert obj is not None
    if kind == "Delete":
        if obj.local:  # our member's post, removed from a remote group: keep it, hide it
            obj.removed_at, obj.removed_reason = now, reason
            return "local post removed from the group by a moderator"
        if obj.deleted_at is None:
            obj.deleted_at, obj.content, obj.removed_reason = now, None, reason
        return "deleted by a group moderator"
    if what == "featured":
        obj.pinned_at = now if kind == "Add" else None
        return "pinned" if kind == "Add" else "unpinned"
    if kind == "Remove":
        obj.removed_at, obj.removed_reason = now, reason
        return "thread removed by a group moderator"
    if kind == "Undo:Remove":
        obj.removed_at, obj.removed_reason = None, None
        return "thread restored by a group moderator"
    obj.locked_at = now if kind == "Lock" else None
    return "thread locked" if kind == "Lock" else "thread unlocked"


async def relayed_moderation(inb: Inbound, announcer: Actor, inner: dict[str, Any]) -> str | None:
    """A group Announced a moderation activity (called by inbox/content.py); None when
    `inner` is not one (the caller handles it)."""
    from t3r1_fed.inbox.group_actions import relayed_block  # Block / Undo{Block}: bans

    banned = await relayed_block(inb, announcer, inner)
    if banned is not None:
        return banned
    if announcer.type != "Group" or moderation_kind(inner) is None:
        return None
    actor = id_of(inner.get("actor"))
    if not actor:
        raise Ignored("relayed moderation without actor")
    return await _apply(inb, announcer, actor, inner)


async def _group_for(inb: Inbound) -> Actor | None:
    """The group a directly received moderation activity is about."""
    act = inb.act
    sender = (await inb.session.execute(select(Actor).where(Actor.uri == act.actor))).scalar()
    if sender is not None and sender.type == "Group":
        return sender
    inner = act.object if isinstance(act.object, dict) and act.type == "Undo" else act.raw
    if act.type in ("Add", "Remove") or (act.type == "Undo" and act.object_type == "Remove"):
        target = id_of(inner.get("target"))
        if target:
            # the group itself, its featured collection, or a collection below its id
            near = (Actor.uri == target, Actor.featured_url == target,
                    Actor.uri == target.rsplit("/", 1)[0])
            q = select(Actor).where(Actor.type == "Group", Actor.deleted_at.is_(None), or_(*near))
            found = (await inb.session.execute(q)).scalars().first()
            if found is not None:
                return found
    obj = await stored_object(inb.session, id_of(inner.get("object")) or "")
    if obj is None or obj.group_id is None:
        return None
    return (await inb.session.execute(select(Actor).where(Actor.id == obj.group_id))).scalar()


async def _direct(inb: Inbound, fallback: Handler | None) -> str:
    group = await _group_for(inb)
    classified = _classify(inb, group, inb.act.raw) if group is not None else None
    if group is None or classified is None:
        if fallback is not None:  # another feature's Undo
            return await fallback(inb)
        raise Ignored("moderation of nothing in a group known here")
    return await _direct_in(inb, group, classified[1])


async def _direct_in(inb: Inbound, group: Actor, what: str) -> str:
    if group.local and what == "moderators":
        raise Ignored("our cooperatives' moderators are named by their admins here")
    if not group.local and inb.act.actor != group.uri:
        raise Ignored("moderation of a remote group's content not relayed by the group")
    done = await _apply(inb, group, inb.act.actor, inb.act.raw)
    if done is None:  # the author's own deletion, handled elsewhere
        raise Ignored("not a moderation activity")
    if group.local:
        coop = await coop_for_actor(inb.session, group.id)
        if coop is not None:
            await announce_update(inb.ctx, inb.session, group, coop, inb.act.raw)
            done += ", announced by the group"
    return done


async def _undo_fallback(inb: Inbound) -> str:
    """An `Undo` of something that is not moderation: the generic `Undo` handler, looked
    up when the activity arrives (not captured at import)."""
    fn = TABLE.get(("Undo", ANY))
    if fn is None:
        raise Ignored("Undo not handled")
    return await fn(inb)


@handles("Lock")
async def on_lock(inb: Inbound) -> str:
    return await _direct(inb, None)


@handles("Undo", "Lock", "Remove")
async def on_undo_moderation(inb: Inbound) -> str:
    return await _direct(inb, _undo_fallback)


@on_collection("Add", "featured")
@on_collection("Remove", "featured")
@on_collection("Add", "moderators")
@on_collection("Remove", "moderators")
@on_collection("Remove", ITSELF)
async def collection_moderation(inb: Inbound, group: Actor, name: str) -> str:
    """Pin/unpin (`featured`), name/unname a moderator (`moderators`), remove a thread
    (`Remove{target: group}`), sent directly (not relayed by an `Announce`)."""
    if group.type != "Group":  # a Mastodon user's pinned posts …
        raise Ignored(f"{inb.act.type} to the {name} of an actor that is not a group")
    classified = _classify(inb, group, inb.act.raw)
    if classified is None:
        raise Ignored(f"{inb.act.type} to {name} of {group.uri} is not moderation")
    return await _direct_in(inb, group, classified[1])


# ---- reports ------------------------------------------------------------------------------


@handles("Flag")
async def on_flag(inb: Inbound) -> str:
    """A report (Mastodon's instance-actor Flag, Lemmy's user Flag, or a remote group
    forwarding one to its moderators here)."""
    act, session = inb.act, inb.session
    uris = ids_of(act.raw.get("object"))[:20]
    raw_comment = act.raw.get("content") or act.raw.get("summary") or ""
    comment = plain_text(str(raw_comment))[:MAX_COMMENT_CHARS] or None
    addressed = {*act.to, *act.cc, *act.audience, *([inb.recipient] if inb.recipient else [])}
    q = select(Actor).where(
        Actor.uri.in_(addressed | set(uris)), Actor.local.is_(True), Actor.type == "Group"
    )
    group = (await session.execute(q)).scalars().first() or await group_of_objects(session, uris)
    sender = (await session.execute(select(Actor).where(Actor.uri == act.actor))).scalar()
    if (group is None or not group.local) and (sender is None or sender.type != "Group"):
        # before any fetch: a report about nothing here costs no request
        raise Ignored("report about nothing in a cooperative of this instance")
    reporter = await remote_actor(inb)
    if reporter.type == "Group":
        local = (
            await session.execute(
                select(Actor.id).where(Actor.uri.in_(addressed), Actor.local.is_(True))
            )
        ).first()
        if local is None:
            raise Ignored("forwarded report not addressed to anyone here")
        row = await store_flag(session, act.id, reporter, reporter, uris, comment)
        return "forwarded report stored" if row else "report already stored"
    if group is None or not group.local:
        raise Ignored("report about nothing in a cooperative of this instance")
    row = await store_flag(session, act.id, reporter, group, uris, comment)
    if row is None:
        return "report already stored"
    sent = await forward_flag(inb.ctx, session, group, row)
    return f"report stored, forwarded to {sent} remote moderator(s)"
