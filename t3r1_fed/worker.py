"""The worker: inbox processing, outbound delivery and periodic maintenance, in-process or
standalone."""

from __future__ import annotations

import asyncio
import contextlib

from t3r1_fed import features, maintenance
from t3r1_fed.context import Context
from t3r1_fed.federation.delivery import DeliveryPump
from t3r1_fed.inbox import backfill
from t3r1_fed.inbox import worker as inbox_worker


class Worker:
    def __init__(self, ctx: Context) -> None:
        features.load()  # registers the inbox handlers
        self.ctx = ctx
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.tasks = [
            asyncio.create_task(inbox_worker.run(self.ctx, self.stop), name="inbox-worker"),
            asyncio.create_task(DeliveryPump(self.ctx).run(self.stop), name="delivery-pump"),
            asyncio.create_task(maintenance.run(self.ctx, self.stop), name="maintenance"),
            asyncio.create_task(backfill.run(self.ctx, self.stop), name="backfill"),
        ]

    async def close(self) -> None:
        self.stop.set()
        self.ctx.wake_inbox.set()
        self.ctx.wake_deliveries.set()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                try:
                    await asyncio.wait_for(task, 5)
                except TimeoutError:
                    task.cancel()
        self.tasks = []
