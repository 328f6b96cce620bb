"""A remote cooperative's FAQ, as its followers here keep it (FEP-400e).

- `Add{object: entry, target: faq, position}` from the group: the entry (taken from its
  origin when not stored yet) becomes `kind = "faq"` of that group, at the group's
  `position` (our term; appended when absent, e.g. from another implementation).
- `Remove{object: entry, target: faq}` from the group: withdrawn from our copy
  (`removed_at`); the Article stays until its author deletes it.
- `Update{OrderedCollection faq}` from the group: our copy takes the listed order.

Only the group itself changes its FAQ (a moderator's change reaches us as the group's
activity), and only when someone here follows it.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.coops.editing import next_position
from t3r1_fed.coops.faq import KIND, MAX_ORDERED_ITEMS
from t3r1_fed.db.models import Actor, Follow, Object, utcnow
from t3r1_fed.inbox.collections import collections_of, on_collection, target_id
from t3r1_fed.inbox.dispatch import Ignored, Inbound, handles
from t3r1_fed.inbox.objects import Refused, resolve_object, stored_object
from t3r1_fed.vocab.normalize import id_of
from t3r1_fed.vocab.sanitize import plain_text


async def _followed_here(session: AsyncSession, group: Actor) -> bool:
    q = (
        select(Follow.id)
        .join(Actor, Actor.id == Follow.follower_id)
        .where(Follow.followee_id == group.id, Follow.state == "accepted", Actor.local.is_(True))
    )
    return (await session.execute(q)).first() is not None


async def _check_group(inb: Inbound, group: Actor) -> None:
    if group.local:
        raise Ignored("our own cooperative's FAQ is changed here, not by remote activities")
    if inb.act.actor != group.uri or group.type != "Group":
        raise Ignored("only the group changes its FAQ")
    if not await _followed_here(inb.session, group):
        raise Ignored("FAQ of a group nobody here follows")


def _belongs(row: Object, raw: dict[str, Any], group: Actor, target: str) -> bool:
    """Was the entry posted into this group (its 400e target, audience or our filing)?"""
    audience = raw.get("audience")
    audiences = {id_of(a) for a in (audience if isinstance(audience, list) else [audience])}
    return row.group_id == group.id or target_id(raw) == target or group.uri in audiences


@on_collection("Add", "faq")
async def faq_added(inb: Inbound, group: Actor, name: str) -> str:
    await _check_group(inb, group)
    oid = inb.act.object_id
    if not oid:
        raise Ignored("Add without object")
    try:
        row = await resolve_object(inb.ctx, inb.session, oid, group=group)
    except Refused as e:
        raise Ignored(str(e)) from e
    raw = orjson.loads(row.raw)
    if not isinstance(raw, dict) or not _belongs(row, raw, group, inb.act.target or ""):
        raise Ignored("the entry was not posted into this group")
    row.group_id = group.id
    row.removed_at = row.removed_reason = None
    row.kind = KIND
    position = inb.raw.get("position")
    if isinstance(position, int) and not isinstance(position, bool) and position > 0:
        row.position = position  # deliveries arrive in any order: the group's place wins
    elif row.position is None:
        row.position = await next_position(inb.session, group.id, KIND)
    return "faq entry added"


@on_collection("Remove", "faq")
async def faq_removed(inb: Inbound, group: Actor, name: str) -> str:
    await _check_group(inb, group)
    row = await stored_object(inb.session, inb.act.object_id or "")
    if row is None or row.kind != KIND or row.group_id != group.id:
        raise Ignored("Remove of an entry not in our copy of this FAQ")
    row.removed_at = utcnow()
    summary = inb.raw.get("summary")
    row.removed_reason = plain_text(summary, 500) if isinstance(summary, str) else None
    return "faq entry removed"


@handles("Update", "OrderedCollection")
async def faq_reordered(inb: Inbound) -> str:
    obj = inb.act.object
    assert isinstance(obj, dict)
    group = (
        await inb.session.execute(select(Actor).where(Actor.uri == inb.act.actor))
    ).scalar()
    if group is None or collections_of(group).get("faq") != inb.act.object_id:
        raise Ignored("update of a collection that is not the actor's FAQ")
    await _check_group(inb, group)
    items = obj.get("orderedItems")
    order = [i for i in map(id_of, items if isinstance(items, list) else []) if i]
    rows = (
        await inb.session.execute(
            select(Object).where(
                Object.uri.in_(order[:MAX_ORDERED_ITEMS]),
                Object.group_id == group.id,
                Object.kind == KIND,
            )
        )
    ).scalars()
    by_uri = {r.uri: r for r in rows}
    for position, uri in enumerate(order[:MAX_ORDERED_ITEMS], start=1):
        if uri in by_uri:
            by_uri[uri].position = position
    return f"faq reordered ({len(by_uri)} entries)"
