"""Claiming rows of the durable queues (deliveries, inbox items) safely across workers.

One statement serves both backends: an UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING.
On PostgreSQL the inner SELECT takes `FOR UPDATE SKIP LOCKED`, so any number of worker
processes share a queue without blocking each other; SQLite serialises writers, which makes
the same statement atomic there. A claim is a lease (`locked_until`): a worker that dies
mid-task leaves the row to be taken again when the lease runs out.
"""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Integer, Table, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.db.models import Delivery, Host, InboxItem, UTCDateTime, utcnow


@functools.cache
def _claim_deliveries_stmt() -> Any:
    """The delivery claim, built once: building it cost more CPU than running it.

    Bound per call: `now`, `lim` (rows wanted) and `until` (end of the lease).
    """
    now = bindparam("now", type_=UTCDateTime())
    blocked_hosts = select(Host.domain).where(Host.circuit_open_until > now)
    inner = (
        select(Delivery.id)
        .where(
            Delivery.state == "pending",
            Delivery.next_attempt_at <= now,
            or_(Delivery.locked_until.is_(None), Delivery.locked_until < now),
            Delivery.host.not_in(blocked_hosts),
        )
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(bindparam("lim", type_=Integer()))
        .with_for_update(skip_locked=True)
    )
    # On the Core table, not the mapped class: the ORM's bulk-UPDATE bookkeeping is useless
    # here (rows come back as plain tuples) and cost as much as the statement itself.
    t = cast(Table, Delivery.__table__)
    return (
        update(t)
        .where(t.c.id.in_(inner.scalar_subquery()))
        .values(locked_until=bindparam("until", type_=UTCDateTime()), attempts=t.c.attempts + 1)
        .returning(t.c.id, t.c.activity_id, t.c.inbox, t.c.host, t.c.attempts, t.c.created_at)
    )


async def claim_deliveries(
    session: AsyncSession, limit: int, lease: float, *, commit: bool = True
) -> list[Any]:
    """Claim up to `limit` due rows; `commit=False` leaves the commit to the caller (the
    delivery pump records the previous outcomes in the same transaction)."""
    now = utcnow()
    stmt = _claim_deliveries_stmt()
    params = {"now": now, "lim": limit, "until": now + timedelta(seconds=lease)}
    rows = list((await session.execute(stmt, params)).all())
    if commit:
        await session.commit()
    return rows


@functools.cache
def _claim_inbox_items_stmt() -> Any:
    """The inbox claim, built once (the worker polls it several times a second even when
    idle). Bound per call: `now`, `lim` and `until`, as for deliveries."""
    now = bindparam("now", type_=UTCDateTime())
    inner = (
        select(InboxItem.id)
        .where(
            InboxItem.state == "pending",
            InboxItem.next_attempt_at <= now,
            or_(InboxItem.locked_until.is_(None), InboxItem.locked_until < now),
        )
        .order_by(InboxItem.id)
        .limit(bindparam("lim", type_=Integer()))
        .with_for_update(skip_locked=True)
    )
    t = cast(Table, InboxItem.__table__)
    return (
        update(t)
        .where(t.c.id.in_(inner.scalar_subquery()))
        .values(locked_until=bindparam("until", type_=UTCDateTime()), attempts=t.c.attempts + 1)
        .returning(t.c.id, t.c.body, t.c.recipient, t.c.attempts)
    )


async def claim_inbox_items(session: AsyncSession, limit: int, lease: float) -> list[Any]:
    now = utcnow()
    params = {"now": now, "lim": limit, "until": now + timedelta(seconds=lease)}
    rows = list((await session.execute(_claim_inbox_items_stmt(), params)).all())
    await session.commit()
    return rows
