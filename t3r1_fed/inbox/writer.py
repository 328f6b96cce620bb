"""Group commit for the inbox: many verified activities, one INSERT and one COMMIT.

Handlers `await writer.submit(...)`; a single task drains the queue in batches, inserts
with ON CONFLICT DO NOTHING on the activity id (a duplicate delivery has one effect), and
tells each caller whether its row was new. The caller answers 202 only after the commit,
so an accepted activity is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite

from t3r1_fed.context import Context
from t3r1_fed.db.models import InboxItem, utcnow

log = logging.getLogger("t3r1.inbox")

MAX_BATCH = 500


@dataclass(frozen=True)
class Incoming:
    activity_uri: str
    actor_uri: str
    recipient: str | None
    body: str


class InboxWriter:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._queue: asyncio.Queue[tuple[Incoming, asyncio.Future[bool]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        dialect = ctx.engine.dialect.name
        table = cast(Table, InboxItem.__table__)
        ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
        # Built once, on the Core table (not the ORM's bulk-insert path): the same
        # statement and rows for every batch.
        self._stmt = ins.on_conflict_do_nothing(
            index_elements=[table.c.activity_uri]
        ).returning(table.c.activity_uri)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="inbox-writer")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def submit(self, item: Incoming) -> bool:
        """Persist `item`; True if new, False if this activity id was already stored."""
        self.start()
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, fut))  # unbounded queue: never blocks
        return await fut

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                new = await self._insert([item for item, _ in batch])
            except Exception as e:  # the database is down: every caller gets a 503
                log.exception("inbox batch insert failed")
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(e)
                continue
            for item, fut in batch:
                if not fut.done():
                    fut.set_result(new.pop(item.activity_uri, False))
            self.ctx.wake_inbox.set()

    async def _insert(self, items: list[Incoming]) -> dict[str, bool]:
        rows: dict[str, dict[str, object]] = {}
        now = utcnow()
        for it in items:  # the same id twice in one batch is inserted once
            rows.setdefault(
                it.activity_uri,
                {
                    "activity_uri": it.activity_uri,
                    "actor_uri": it.actor_uri,
                    "recipient": it.recipient,
                    "body": it.body,
                    "state": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "received_at": now,
                },
            )
        async with self.ctx.sessions() as session, session.begin():
            result = await session.execute(self._stmt, list(rows.values()))
            inserted = set(result.scalars().all())
        return {uri: True for uri in inserted}
