"""Moderation reaches the group-authored copies of a private cooperative (coops/private.py).

Members on Mastodon-like servers hold copies authored by the group, not the originals, so
withdrawing an original is not enough there:

- a deleted post (by its author or a moderator, local or remote): its copy is tombstoned and
  the group sends `Delete{Tombstone: copy id}`;
- a removed thread (`Remove{object: thread, target: group}`): the copies of the thread and
  of all its replies are deleted the same way;
- a restored thread (`Undo{Remove}`): fresh copies (new ids: Mastodon keeps tombstones and
  would refuse an id it saw deleted) of the thread and its live replies, oldest first so
  each reply's copy threads on its parent's new copy.

Each `Delete` goes to the inboxes that received the copy (the delivery rows of the copy's
`Create`), plus the copy-form members of today: a member who left since still has the copy
and gets its deletion.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.coops.private import COPY_KIND, _send_copy, find_copy
from t3r1_fed.db.models import Activity, Actor, Delivery, Object, utcnow
from t3r1_fed.outbox.publish import publish
from t3r1_fed.vocab.normalize import id_of

MAX_THREAD_COPIES = 500  # copies withdrawn or re-sent for one thread, at most


async def copy_inboxes(session: AsyncSession, group: Actor, copy: Object) -> list[str]:
    """The inboxes the group delivered `copy` to (its Create, and its Updates)."""
    q = (
        select(Delivery.inbox)
        .join(Activity, Activity.id == Delivery.activity_id)
        .where(
            Activity.actor_id == group.id,
            Activity.object_uri == copy.uri,
            Activity.type.in_(("Create", "Update")),
        )
        .distinct()
    )
    return list((await session.execute(q)).scalars())


async def delete_copy(
    ctx: Context, session: AsyncSession, group: Actor, copy: Object, members: list[Actor]
) -> None:
    """Tombstone `copy` and send its `Delete` to where it went and to `members`."""
    if copy.deleted_at is not None or copy.kind != COPY_KIND or copy.author_id != group.id:
        return
    copy.deleted_at, copy.content = utcnow(), None
    inboxes = await copy_inboxes(session, group, copy)
    if not inboxes and not members:
        return
    gone = {
        "id": ctx.uris.activity(),
        "type": "Delete",
        "actor": group.uri,
        "object": {"id": copy.uri, "type": "Tombstone"},
        "to": [group.followers_url or group.uri],
        "cc": [],
    }
    await publish(ctx, session, group, gone, recipients=members, inboxes=inboxes, public=False)


async def _thread_objects(
    session: AsyncSession, group: Actor, root_uri: str, *, live: bool
) -> list[Object]:
    """The thread `root_uri` of `group` and its replies, oldest first."""
    root = (
        await session.execute(
            select(Object).where(Object.uri == root_uri, Object.group_id == group.id)
        )
    ).scalar()
    if root is None:
        return []
    q = select(Object).where(
        or_(Object.id == root.id, Object.thread_id == root.id), Object.group_id == group.id
    )
    if live:
        q = q.where(Object.deleted_at.is_(None), Object.removed_at.is_(None))
    q = q.order_by(Object.published, Object.id).limit(MAX_THREAD_COPIES)
    return list((await session.execute(q)).scalars())


async def withdraw_thread_copies(
    ctx: Context, session: AsyncSession, group: Actor, root_uri: str, members: list[Actor]
) -> int:
    """Delete the copies of a removed thread and of its replies; returns how many."""
    done = 0
    for obj in await _thread_objects(session, group, root_uri, live=False):
        copy = await find_copy(session, group, obj.uri)
        if copy is not None and copy.deleted_at is None:
            await delete_copy(ctx, session, group, copy, members)
            done += 1
    return done


async def resend_thread_copies(
    ctx: Context, session: AsyncSession, group: Actor, root_uri: str, members: list[Actor]
) -> int:
    """New copies of a restored thread and its live replies, to today's copy-form members;
    returns how many."""
    if not members:
        return 0
    done = 0
    for obj in await _thread_objects(session, group, root_uri, live=True):
        copy = await find_copy(session, group, obj.uri)
        if copy is not None and copy.deleted_at is None:
            continue  # still out there (never withdrawn)
        await _send_copy(ctx, session, group, obj, members)
        done += 1
    return done


def _removal_of_thread(group: Actor, activity: dict[str, Any]) -> str | None:
    if activity.get("type") != "Remove" or id_of(activity.get("target")) != group.uri:
        return None
    return id_of(activity.get("object"))


async def copies_follow_moderation(
    ctx: Context,
    session: AsyncSession,
    group: Actor,
    activity: dict[str, Any],
    members: list[Actor],
) -> None:
    """Called with every activity a private cooperative relays (announce_update_private):
    a thread's removal withdraws its copies, the removal's `Undo` sends new ones."""
    removed = _removal_of_thread(group, activity)
    if removed:
        await withdraw_thread_copies(ctx, session, group, removed, members)
        return
    inner = activity.get("object")
    if activity.get("type") == "Undo" and isinstance(inner, dict):
        restored = _removal_of_thread(group, inner)
        if restored:
            await resend_thread_copies(ctx, session, group, restored, members)
