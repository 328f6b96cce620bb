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


async def claim_deliveries(session: AsyncSession, limit: int, lease: float) -> list[Any]:
    now = utcnow()
    stmt = _claim_deliveries_stmt()
    params = {"now": now, "lim": limit, "until": now + timedelta(seconds=lease)}
    rows = list((await session.execute(stmt, params)).all())
    await session.commit()
    return rows


async def claim_inbox_items(session: AsyncSession, limit: int, lease: float) -> list[Any]:
    now = utcnow()
    inner = (
        select(InboxItem.id)
        .where(
            InboxItem.state == "pending",
            InboxItem.next_attempt_at <= now,
            or_(InboxItem.locked_until.is_(None), InboxItem.locked_until < now),
        )
        .order_by(InboxItem.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        update(InboxItem)
        .where(InboxItem.id.in_(inner.scalar_subquery()))
        .values(locked_until=now + timedelta(seconds=lease), attempts=InboxItem.attempts + 1)
        .returning(InboxItem.id, InboxItem.body, InboxItem.recipient, InboxItem.attempts)
        .execution_options(synchronize_session=False)
    )
    rows = list((await session.execute(stmt)).all())
    await session.commit()
    return rows
