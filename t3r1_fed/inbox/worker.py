"""Processes persisted inbox items through the dispatch table.

A crash mid-item leaves its lease to run out and the item is processed again; handlers
are idempotent (unique activity/follow/share ids), so a retry has one effect.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import update

from t3r1_fed.context import Context
from t3r1_fed.db.models import InboxItem, utcnow
from t3r1_fed.db.queue import claim_inbox_items
from t3r1_fed.federation.delivery import revive_host
from t3r1_fed.federation.hosts import host_of
from t3r1_fed.inbox.dispatch import Inbound, dispatch
from t3r1_fed.vocab.normalize import InvalidObject, parse_activity

log = logging.getLogger("t3r1.inbox")

MAX_ATTEMPTS = 8


async def process_item(ctx: Context, row: Any) -> None:
    state, result = "failed", ""
    try:
        act = parse_activity(orjson.loads(row.body))
    except (orjson.JSONDecodeError, InvalidObject) as e:
        act, state, result = None, "failed", f"unparseable: {e}"
    actor_host = ""
    if act is not None:
        try:
            actor_host = host_of(act.actor)
        except ValueError as e:  # the inbox answers 403 to such an actor; never retry it
            act, state, result = None, "ignored", f"invalid actor host: {e}"
    if act is not None:
        async with ctx.sessions() as session:
            try:
                async with session.begin():
                    state, result = await dispatch(Inbound(ctx, session, act, row.recipient))
                    await revive_host(session, actor_host)
            except Exception as e:  # a bug or an outage: retry later, then give up loudly
                log.exception("inbox item failed", extra={"activity": act.id})
                state, result = "failed", f"{type(e).__name__}: {e}"[:1000]
    values: dict[str, Any] = {
        "locked_until": None,
        "result": result[:2000],
        "processed_at": utcnow(),
    }
    if state == "failed" and act is not None and row.attempts < MAX_ATTEMPTS:
        values["state"] = "pending"
        values["next_attempt_at"] = utcnow() + timedelta(
            seconds=(2**row.attempts) * 5 * ctx.settings.backoff_scale
        )
    else:
        values["state"] = state
    async with ctx.sessions() as session, session.begin():
        await session.execute(update(InboxItem).where(InboxItem.id == row.id).values(**values))
    log.info(
        "inbox item %s",
        values["state"],
        extra={"activity": getattr(act, "id", None), "result": result},
    )


async def run_batch(ctx: Context, limit: int = 50) -> int:
    async with ctx.sessions() as session:
        rows = await claim_inbox_items(session, limit, ctx.settings.lease_seconds)
    # Items are processed in order, one at a time: a Follow and its Undo must not race.
    for row in rows:
        await process_item(ctx, row)
    return len(rows)


async def run(ctx: Context, stop: asyncio.Event) -> None:
    wake = ctx.wake_inbox
    while not stop.is_set():
        wake.clear()
        try:
            n = await run_batch(ctx)
        except Exception:
            log.exception("inbox worker batch failed")
            n = 0
            await asyncio.sleep(1.0)
        if n == 0:
            try:
                await asyncio.wait_for(wake.wait(), ctx.settings.poll_interval)
            except TimeoutError:
                pass


async def drain(ctx: Context, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if await run_batch(ctx) == 0:
            return
    raise TimeoutError("inbox queue did not drain")
