"""Moderating a local cooperative: the service API (GROUPS.md "Moderation").

Every action is taken by a moderator (or admin) of the cooperative and federated the
FEP-1b12 way, in the shapes Lemmy sends (samples/lemmy/activities/{deletion,community}):
- delete a post with a reason: the moderator's `Delete{object, summary}`, announced by the
  group, and the group's boost withdrawn (`Undo{Announce}`);
- remove / restore a thread: `Remove{object: thread, target: group, summary}` /
  `Undo{Remove}`, announced by the group; a removed thread leaves the collections;
- lock / unlock a thread: `Lock{object, summary}` / `Undo{Lock}`, announced by the group;
- pin / unpin: the group's own `Add` / `Remove` `{object, target: featured}`;
- add / remove a moderator (admins only): `Add` / `Remove` `{object: actor, target:
  moderators}` by the admin, announced by the group.
Receivers honour these only from the group's moderators via the group's Announce
(inbox/moderation.py). A local moderator of a *remote* group sends `Remove`, `Lock`,
`Undo` and `Add`/`Remove featured` to the group, which applies and announces them (a
`Delete` of someone else's post cannot travel that way: inbox origin checks refuse a
Delete of an object on another host). Bans (`Block`) live in coops/bans.py.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.coops.moderators import ModeratorsUnavailable, is_group_moderator
from t3r1_fed.coops.redistribute import (
    announce_delete,
    announce_update,
    boost_again,
    now_iso,
    withdraw_boost,
)
from t3r1_fed.coops.roles import RoleError, coop_of, require_moderator, set_role, staff_role
from t3r1_fed.db.models import Actor, Coop, Object, utcnow
from t3r1_fed.outbox.publish import followers_of, publish
from t3r1_fed.vocab.context import AS_PUBLIC

MAX_REASON_CHARS = 1000


class ModerationError(ValueError):
    """A moderation action that cannot be done; the message says why."""


def addressing(coop: Coop, group: Actor) -> dict[str, Any]:
    """to/cc/audience of a moderation activity in `group`."""
    if coop.private:
        return {"to": [group.followers_url or group.uri], "cc": [group.uri], "audience": group.uri}
    return {"to": [AS_PUBLIC], "cc": [group.uri], "audience": group.uri}


def _reason(reason: str | None) -> str | None:
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON_CHARS:
        raise ModerationError(f"reason longer than {MAX_REASON_CHARS} characters")
    return reason or None


async def _checked(
    session: AsyncSession, moderator: Actor, group: Actor
) -> Coop:
    try:
        coop = await coop_of(session, group)
        await require_moderator(session, group, moderator)
    except RoleError as e:
        raise ModerationError(str(e)) from e
    return coop


async def _ask_group(
    ctx: Context,
    session: AsyncSession,
    moderator: Actor,
    group: Actor,
    object_uri: str,
    activity: dict[str, Any],
) -> Object:
    """A local moderator of a *remote* group sends it `activity` (Lemmy's way): the group
    checks its moderators, applies it and announces it; our copy changes when that
    Announce arrives (inbox/moderation.py)."""
    try:
        allowed = moderator.local and await is_group_moderator(ctx, session, group, moderator.uri)
    except ModeratorsUnavailable as e:
        raise ModerationError("the cooperative's moderators cannot be checked now") from e
    if not allowed:
        raise ModerationError("only the cooperative's moderators may do this")
    obj = await coop_object(session, group, object_uri)
    doc = {"id": ctx.uris.activity(), "actor": moderator.uri, **activity,
           "to": [group.uri], "cc": [AS_PUBLIC], "audience": group.uri}
    await publish(ctx, session, moderator, doc, recipients=[group])
    return obj


async def coop_object(session: AsyncSession, group: Actor, uri: str) -> Object:
    """A live object posted into `group`, or ModerationError."""
    obj = (await session.execute(select(Object).where(Object.uri == uri))).scalar()
    if obj is None or obj.deleted_at is not None or obj.group_id != group.id:
        raise ModerationError("no such post in this cooperative")
    return obj


async def _by_moderator(
    ctx: Context,
    session: AsyncSession,
    moderator: Actor,
    group: Actor,
    coop: Coop,
    activity: dict[str, Any],
    extra: list[Actor] | None = None,
) -> dict[str, Any]:
    """Store the moderator's activity (it dereferences at its id), send it to `extra`
    (a remote author), and have the group announce it to its followers."""
    activity = {"id": ctx.uris.activity(), "actor": moderator.uri, **activity,
                **addressing(coop, group)}
    await publish(ctx, session, moderator, activity, recipients=extra or [],
                  public=not coop.private)
    return activity


async def delete_post(
    ctx: Context,
    session: AsyncSession,
    moderator: Actor,
    group: Actor,
    object_uri: str,
    reason: str | None,
) -> Object:
    """A moderator deletes any post of the (local) cooperative, with a reason."""
    if not group.local:
        raise ModerationError("in a remote cooperative, remove the thread instead")
    coop = await _checked(session, moderator, group)
    obj = await coop_object(session, group, object_uri)
    why = _reason(reason)
    author = (await session.execute(select(Actor).where(Actor.id == obj.author_id))).scalar_one()
    activity: dict[str, Any] = {"type": "Delete", "object": obj.uri}
    if why:
        activity["summary"] = why
    delete = await _by_moderator(
        ctx, session, moderator, group, coop, activity, [author] if not author.local else None
    )
    obj.deleted_at = utcnow()
    obj.content = None
    obj.removed_reason = why
    await announce_delete(ctx, session, group, coop, delete, obj)
    if author.local:
        # The author's own followers (Mastodon included) only take a Delete signed by the
        # author: our server speaks for its member, so the post leaves their timelines too.
        tomb = {"id": ctx.uris.activity(), "type": "Delete", "actor": author.uri,
                "object": {"id": obj.uri, "type": "Tombstone"}, "to": [AS_PUBLIC]}
        await publish(ctx, session, author, tomb, recipients=await followers_of(session, author.id),
                      public=not coop.private)
    return obj


async def _thread(session: AsyncSession, group: Actor, uri: str) -> Object:
    obj = await coop_object(session, group, uri)
    if obj.in_reply_to is not None:
        raise ModerationError("this is a reply, not a thread")
    return obj


async def remove_thread(
    ctx: Context,
    session: AsyncSession,
    moderator: Actor,
    group: Actor,
    object_uri: str,
    reason: str | None,
) -> Object:
    """A moderator removes a thread from the cooperative (it leaves its collections)."""
    if not group.local:
        return await _ask_group(ctx, session, moderator, group, object_uri, {
            "type": "Remove", "object": object_uri, "target": group.uri,
            **({"summary": r} if (r := _reason(reason)) else {})})
    coop = await _checked(session, moderator, group)
    obj = await _thread(session, group, object_uri)
    if obj.removed_at is not None:
        raise ModerationError("this thread is already removed")
    why = _reason(reason)
    activity: dict[str, Any] = {"type": "Remove", "object": obj.uri, "target": group.uri}
    if why:
        activity["summary"] = why
    remove = await _by_moderator(ctx, session, moderator, group, coop, activity)
    obj.removed_at = utcnow()
    obj.removed_reason = why
    await announce_update(ctx, session, group, coop, remove)
    if not coop.private:  # private cooperatives' copies are handled by coops/private.py
        await withdraw_boost(ctx, session, group, coop, obj)
    return obj


async def _undo(
    ctx: Context,
    session: AsyncSession,
    moderator: Actor,
    group: Actor,
    coop: Coop,
    inner: dict[str, Any],
) -> None:
    """`Undo{inner}` by the moderator, announced by the group."""
    undone = {"id": ctx.uris.activity(), "actor": moderator.uri, **inner,
              **addressing(coop, group)}
    undo = await _by_moderator(ctx, session, moderator, group, coop,
                               {"type": "Undo", "object": undone})
    await announce_update(ctx, session, group, coop, undo)


async def restore_thread(
    ctx: Context, session: AsyncSession, moderator: Actor, group: Actor, object_uri: str
) -> Object:
    """Undo a removal: `Undo{Remove}`."""
    if not group.local:
        inner = {"id": ctx.uris.activity(), "type": "Remove", "actor": moderator.uri,
                 "object": object_uri, "target": group.uri}
        return await _ask_group(ctx, session, moderator, group, object_uri,
                                {"type": "Undo", "object": inner})
    coop = await _checked(session, moderator, group)
    obj = await _thread(session, group, object_uri)
    if obj.removed_at is None:
        raise ModerationError("this thread is not removed")
    obj.removed_at = None
    obj.removed_reason = None
    await _undo(ctx, session, moderator, group, coop,
                {"type": "Remove", "object": obj.uri, "target": group.uri})
    await boost_again(ctx, session, group, coop, obj)
    return obj


async def set_locked(
    ctx: Context,
    session: AsyncSession,
    moderator: Actor,
    group: Actor,
    object_uri: str,
    locked: bool,
    reason: str | None = None,
) -> Object:
    """Lock a thread (no new replies) or unlock it: `Lock` / `Undo{Lock}`."""
    if not group.local:
        lock: dict[str, Any] = {"type": "Lock", "object": object_uri,
                                **({"summary": r} if (r := _reason(reason)) else {})}
        if not locked:
            lock = {"type": "Undo",
                    "object": {"id": ctx.uris.activity(), "actor": moderator.uri, **lock}}
        return await _ask_group(ctx, session, moderator, group, object_uri, lock)
    coop = await _checked(session, moderator, group)
    obj = await _thread(session, group, object_uri)
    if (obj.locked_at is not None) == locked:
        raise ModerationError("this thread is already " + ("locked" if locked else "unlocked"))
    why = _reason(reason)
    if locked:
        activity: dict[str, Any] = {"type": "Lock", "object": obj.uri}
        if why:
            activity["summary"] = why
        lock = await _by_moderator(ctx, session, moderator, group, coop, activity)
        await announce_update(ctx, session, group, coop, lock)
        obj.locked_at = utcnow()
    else:
        await _undo(ctx, session, moderator, group, coop, {"type": "Lock", "object": obj.uri})
        obj.locked_at = None
    return obj


async def set_pinned(
    ctx: Context,
    session: AsyncSession,
    moderator: Actor,
    group: Actor,
    object_uri: str,
    pinned: bool,
) -> Object:
    """Pin a post into the group's `featured` collection, or unpin it: the group's own
    `Add` / `Remove {object, target: featured}` to its followers. In a remote group the
    moderator sends that `Add` / `Remove` to the group (Lemmy)."""
    if not group.local:
        return await _ask_group(ctx, session, moderator, group, object_uri, {
            "type": "Add" if pinned else "Remove", "object": object_uri,
            "target": group.featured_url or ctx.uris.sub(group.uri, "featured")})
    coop = await _checked(session, moderator, group)
    obj = await coop_object(session, group, object_uri)
    if (obj.pinned_at is not None) == pinned:
        raise ModerationError("this post is already " + ("pinned" if pinned else "not pinned"))
    if pinned and obj.removed_at is not None:
        raise ModerationError("a removed thread cannot be pinned")
    obj.pinned_at = utcnow() if pinned else None
    activity = {
        "id": ctx.uris.activity(),
        "type": "Add" if pinned else "Remove",
        "actor": group.uri,
        "object": obj.uri,
        "target": group.featured_url or ctx.uris.sub(group.uri, "featured"),
        "published": now_iso(),
        **addressing(coop, group),
    }
    await publish(ctx, session, group, activity, recipients=await followers_of(session, group.id),
                  public=not coop.private)
    return obj


async def set_moderator(
    ctx: Context,
    session: AsyncSession,
    admin: Actor,
    group: Actor,
    target: Actor,
    moderator: bool,
) -> str:
    """An admin adds `target` to the moderators or removes them: `Add` / `Remove
    {object: actor, target: moderators}` by the admin, announced by the group.
    Returns the new role."""
    coop = await _checked(session, admin, group)
    before = await staff_role(session, group.id, target.id)
    if moderator and before is not None:
        raise ModerationError("already a moderator or admin of this cooperative")
    if not moderator and before != "moderator":
        raise ModerationError("not a moderator of this cooperative")
    try:
        role = await set_role(ctx, session, admin, group, target,
                              "moderator" if moderator else "member")
    except RoleError as e:
        raise ModerationError(str(e)) from e
    activity = {
        "type": "Add" if moderator else "Remove",
        "object": target.uri,
        "target": ctx.uris.sub(group.uri, "moderators"),
    }
    extra = [target] if not target.local else None
    change = await _by_moderator(ctx, session, admin, group, coop, activity, extra)
    await announce_update(ctx, session, group, coop, change)
    return role


async def pinned_posts(session: AsyncSession, group: Actor) -> list[Object]:
    """The cooperative's pinned posts, most recently pinned first."""
    q = (
        select(Object)
        .where(
            Object.group_id == group.id,
            Object.pinned_at.is_not(None),
            Object.deleted_at.is_(None),
            Object.removed_at.is_(None),
        )
        .order_by(Object.pinned_at.desc())
    )
    return list((await session.execute(q)).scalars())
