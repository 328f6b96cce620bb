"""Editing a local object of a cooperative: the stored JSON changes, an `Update` goes out.

Shared by the FAQ and collaborative documents. The `Update` is sent by the member who made
the change (to their followers) and announced by the cooperative (FEP-1b12). Receivers
apply an `Update` only from the object's author, so an edit by a moderator or by another
member of a document reaches them through the cooperative's `Announce`, whose object they
take from the object's origin — this server — never from the editor.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.coops.redistribute import announce_update, now_iso
from t3r1_fed.db.models import Actor, Coop, Object, utcnow
from t3r1_fed.outbox.publish import followers_of, publish


class EditError(ValueError):
    """An edit that is not allowed or not valid; the message says why."""


async def group_of(session: AsyncSession, obj: Object) -> tuple[Actor, Coop]:
    """The local cooperative an object was posted into, or EditError."""
    if obj.group_id is None:
        raise EditError("this object is not in a cooperative")
    row = (
        await session.execute(
            select(Actor, Coop)
            .join(Coop, Coop.actor_id == Actor.id)
            .where(Actor.id == obj.group_id, Actor.local.is_(True), Actor.deleted_at.is_(None))
        )
    ).first()
    if row is None:
        raise EditError("this object is not in a cooperative of this instance")
    return row[0], row[1]


async def actor_by_id(session: AsyncSession, actor_id: int) -> Actor:
    return (await session.execute(select(Actor).where(Actor.id == actor_id))).scalar_one()


async def publish_edit(
    ctx: Context,
    session: AsyncSession,
    editor: Actor,
    row: Object,
    changes: dict[str, Any],
) -> dict[str, Any]:
    """Apply `changes` (JSON properties) to the local object `row` and send the Update.

    Returns the new JSON of the object. The caller has checked the editor's rights.
    """
    if not row.local or row.deleted_at is not None:
        raise EditError("only live objects of this instance can be edited here")
    group, coop = await group_of(session, row)
    doc: dict[str, Any] = {**orjson.loads(row.raw), **changes, "updated": now_iso()}
    row.raw = orjson.dumps(doc).decode()
    row.name = doc.get("name")
    row.content = doc.get("content")
    row.updated = utcnow()
    update = {
        "id": ctx.uris.activity(),
        "type": "Update",
        "actor": editor.uri,
        "object": doc,
        "to": doc.get("to", []),
        "cc": doc.get("cc", []),
        "published": doc["updated"],
    }
    await publish(
        ctx,
        session,
        editor,
        update,
        # In a private cooperative, members get it through the group only (coops/private.py).
        recipients=[] if coop.private else await followers_of(session, editor.id),
        public=not coop.private,
    )
    await announce_update(ctx, session, group, coop, update)
    return doc


async def next_position(session: AsyncSession, group_id: int, kind: str) -> int:
    """One past the last position of `kind` objects in a cooperative (1 when empty)."""
    q = select(func.max(Object.position)).where(Object.group_id == group_id, Object.kind == kind)
    return int((await session.execute(q)).scalar() or 0) + 1
