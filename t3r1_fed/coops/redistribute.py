"""A cooperative redistributes what is posted into it (GROUPS.md "Redistribution").

To every follower's (shared) inbox, once:
- `Announce(<activity as received>)` for FEP-1b12 peers (Lemmy, Mbin, Friendica, NodeBB,
  and other t3r1 instances);
- for public top-level posts only, `Announce(<object id>)` with `to: [Public]`,
  `cc: [followers]`, `published: now`, which Mastodon shows as a boost by the group.
Updates and deletions are announced the same way (1b12), and a deleted post's boost is
withdrawn with `Undo(Announce)` so it also leaves Mastodon timelines.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.coops import private
from t3r1_fed.db.models import Actor, Coop, Object, Share
from t3r1_fed.outbox.publish import followers_of, publish
from t3r1_fed.vocab.context import AS_PUBLIC


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _strip_context(activity: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in activity.items() if k != "@context"}


def group_audience(group: Actor, coop: Coop) -> tuple[list[str], list[str]]:
    """(to, cc) of everything a cooperative sends."""
    followers = group.followers_url or ""
    if coop.private:
        return [followers], []
    return [AS_PUBLIC], [followers]


async def _announce_activity(
    ctx: Context,
    session: AsyncSession,
    group: Actor,
    coop: Coop,
    activity: dict[str, Any],
    recipients: list[Actor],
) -> str:
    """FEP-1b12: the group wraps `activity` as received in an Announce; returns its id."""
    to, cc = group_audience(group, coop)
    wrapped = {
        "id": ctx.uris.activity(),
        "type": "Announce",
        "actor": group.uri,
        "object": _strip_context(activity),
        "to": to,
        "cc": cc,
        "published": now_iso(),
    }
    await publish(ctx, session, group, wrapped, recipients=recipients, public=not coop.private)
    return str(wrapped["id"])


def _boostable(coop: Coop, obj: Object) -> bool:
    """Public top-level posts of public cooperatives are boosted for Mastodon followers.
    Resources (Document/Image) are not: Mastodon ignores Document, and public cooperatives
    announce each file with a Note that is boosted (coops/resources.py)."""
    top_level = obj.in_reply_to is None and obj.kind != "resource"
    return not coop.private and obj.visibility == "public" and top_level


def _boost(ctx: Context, group: Actor, obj: Object) -> dict[str, Any]:
    """`Announce(<object id>)`, which Mastodon shows as a boost by the group."""
    return {
        "id": ctx.uris.activity(),
        "type": "Announce",
        "actor": group.uri,
        "object": obj.uri,
        "to": [AS_PUBLIC],
        "cc": [group.followers_url],
        "published": now_iso(),
    }


async def redistribute(
    ctx: Context,
    session: AsyncSession,
    group: Actor,
    coop: Coop,
    activity: dict[str, Any],
    obj: Object,
) -> None:
    """Announce a new post `obj`, received as `activity`, to the cooperative's followers."""
    if coop.private:  # members only, in the form each member's server displays
        share_uri = await private.redistribute_private(ctx, session, group, coop, activity, obj)
    else:
        recipients = await followers_of(session, group.id)
        share_uri = await _announce_activity(ctx, session, group, coop, activity, recipients)
        if _boostable(coop, obj):
            boost = _boost(ctx, group, obj)
            await publish(ctx, session, group, boost, recipients=recipients)
            share_uri = boost["id"]
    existing = (
        await session.execute(
            select(Share.id).where(Share.actor_id == group.id, Share.object_id == obj.id)
        )
    ).first()
    if existing is None:
        session.add(Share(uri=share_uri, actor_id=group.id, object_id=obj.id))


async def announce_update(
    ctx: Context, session: AsyncSession, group: Actor, coop: Coop, activity: dict[str, Any]
) -> None:
    if coop.private:
        return await private.announce_update_private(ctx, session, group, coop, activity)
    await _announce_activity(
        ctx, session, group, coop, activity, await followers_of(session, group.id)
    )


async def announce_delete(
    ctx: Context,
    session: AsyncSession,
    group: Actor,
    coop: Coop,
    activity: dict[str, Any],
    obj: Object,
) -> None:
    """Announce a deletion, and withdraw the group's boost of the object."""
    if coop.private:
        return await private.announce_delete_private(ctx, session, group, coop, activity, obj)
    recipients = await followers_of(session, group.id)
    await _announce_activity(ctx, session, group, coop, activity, recipients)
    await withdraw_boost(ctx, session, group, coop, obj, recipients)


async def withdraw_boost(
    ctx: Context,
    session: AsyncSession,
    group: Actor,
    coop: Coop,
    obj: Object,
    recipients: list[Actor] | None = None,
) -> None:
    """`Undo(Announce)` of the group's boost of `obj`, so it also leaves Mastodon timelines
    (a deletion, or a moderator's removal of a thread)."""
    share = (
        await session.execute(
            select(Share).where(Share.actor_id == group.id, Share.object_id == obj.id)
        )
    ).scalar()
    if share is None:
        return
    if recipients is None:
        recipients = await followers_of(session, group.id)
    to, cc = group_audience(group, coop)
    undo = {
        "id": ctx.uris.activity(),
        "type": "Undo",
        "actor": group.uri,
        "object": {"id": share.uri, "type": "Announce", "actor": group.uri, "object": obj.uri},
        "to": to,
        "cc": cc,
    }
    await publish(ctx, session, group, undo, recipients=recipients, public=not coop.private)
    await session.execute(delete(Share).where(Share.id == share.id))


async def boost_again(
    ctx: Context, session: AsyncSession, group: Actor, coop: Coop, obj: Object
) -> None:
    """A restored thread of a public cooperative is boosted anew (a new Announce id:
    servers that saw the Undo would not take the old one back)."""
    if not _boostable(coop, obj):
        return
    boost = _boost(ctx, group, obj)
    await publish(ctx, session, group, boost, recipients=await followers_of(session, group.id))
    session.add(Share(uri=boost["id"], actor_id=group.id, object_id=obj.id))
