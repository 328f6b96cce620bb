"""Periodic maintenance, the worker's third task: every `maintenance_interval` seconds,
close the polls whose time has passed and send the poll counts the throttle held back
(coops/polls.py). Each step claims its rows with a conditional UPDATE, so several worker
processes may run it at once without sending anything twice."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context

log = logging.getLogger("t3r1.maintenance")

Step = Callable[[Context, AsyncSession], Awaitable[int]]
BATCH = 100


@dataclass(frozen=True)
class Pass:
    polls_closed: int
    polls_updated: int


async def _close_polls(ctx: Context, session: AsyncSession) -> int:
    from t3r1_fed.coops.polls import close_due_polls

    return await close_due_polls(ctx, session, limit=BATCH)


async def _flush_polls(ctx: Context, session: AsyncSession) -> int:
    from t3r1_fed.coops.polls import flush_poll_results

    return await flush_poll_results(ctx, session, limit=BATCH)


async def _drain(ctx: Context, step: Step) -> int:
    """Run `step` in batches, one transaction each, until a batch comes back short."""
    total = 0
    while True:
        async with ctx.sessions() as session, session.begin():
            n = await step(ctx, session)
        total += n
        if n < BATCH:
            return total


async def run_once(ctx: Context) -> Pass:
    """One maintenance pass (also what an operator's cron or a test may call)."""
    done = Pass(await _drain(ctx, _close_polls), await _drain(ctx, _flush_polls))
    if done.polls_closed or done.polls_updated:
        log.info("maintenance", extra={"polls_closed": done.polls_closed,
                                       "polls_updated": done.polls_updated})
    return done


async def run(ctx: Context, stop: asyncio.Event) -> None:
    """Run a pass every `maintenance_interval` seconds until `stop` is set."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), ctx.settings.maintenance_interval)
        if stop.is_set():
            return
        try:
            await run_once(ctx)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug or an outage: log it and try again next time
            log.exception("maintenance pass failed")
