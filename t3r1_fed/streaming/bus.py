"""The per-process hub: events in (LISTEN on PostgreSQL, the commit hook on SQLite),
resolved once into routing facts, fanned out to every connection's bounded queue.

One Hub per web application (it hangs off the app, not off a global). On PostgreSQL it
owns one asyncpg connection dedicated to `LISTEN t3r1_stream`, reconnected with backoff;
events committed while it is down are lost, as with Mastodon's Redis pub/sub (clients
reload their timelines on reconnect). On SQLite, committing sessions of this process hand
their events to the hubs registered for the same database file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Final

import asyncpg  # type: ignore[import-untyped]

from t3r1_fed.context import Context
from t3r1_fed.streaming import events as ev
from t3r1_fed.streaming.facts import Fact, resolve

log = logging.getLogger("t3r1.streaming")

INCOMING_MAX: Final = 10_000  # events waiting to be resolved; more are dropped (logged)
BATCH: Final = 200  # events resolved in one database session
PING_SECONDS: Final = 30.0  # the LISTEN connection is checked this often
BACKOFF_MAX: Final = 30.0
APPLICATION_NAME: Final = "t3r1-stream-listen"  # names the connection in pg_stat_activity


class Subscriber:
    """One connection's inbox of facts. Bounded: a consumer too slow to keep up is marked
    overflowed (the connection closes it) rather than buffering without limit."""

    def __init__(self, maxsize: int, wants: Callable[[Fact], bool] | None = None) -> None:
        self.queue: asyncio.Queue[Fact] = asyncio.Queue(maxsize)
        self.overflowed = asyncio.Event()
        self.wants = wants  # a cheap pre-filter: only facts this connection may send

    def offer(self, fact: Fact) -> None:
        if self.wants is not None and not self.wants(fact):
            return
        try:
            self.queue.put_nowait(fact)
        except asyncio.QueueFull:
            self.overflowed.set()


# SQLite: database key → hubs of this process (the commit hook has no app to ask).
_local_hubs: dict[str, set[Hub]] = {}
_local_lock = threading.Lock()


def _local_sink(key: str, events: Sequence[ev.StreamEvent]) -> None:
    with _local_lock:
        hubs = list(_local_hubs.get(key, ()))
    for hub in hubs:
        hub.feed_threadsafe(events)


def _setter(flag: asyncio.Event) -> Any:
    return lambda _conn: flag.set()


class Hub:
    def __init__(self, ctx: Context, *, queue_size: int = 1000) -> None:
        self.ctx = ctx
        self.queue_size = queue_size
        self.subscribers: set[Subscriber] = set()
        self._incoming: asyncio.Queue[ev.StreamEvent] = asyncio.Queue(INCOMING_MAX)
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._key = ev.database_key(ctx.engine.url)
        self.listening = asyncio.Event()  # PostgreSQL: LISTEN is active
        self.dropped = 0

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._tasks.append(asyncio.create_task(self._resolve_loop(), name="stream-resolve"))
        if self.ctx.is_postgres:
            self._tasks.append(asyncio.create_task(self._listen_loop(), name="stream-listen"))
            # Serve once LISTEN is in place, so that nothing committed after start is lost
            # (but do not hold the app back if PostgreSQL is slow: health says 503 meanwhile).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.listening.wait(), 5)
        else:
            ev.add_local_sink(_local_sink)
            with _local_lock:
                _local_hubs.setdefault(self._key, set()).add(self)
            self.listening.set()

    async def close(self) -> None:
        with _local_lock:
            hubs = _local_hubs.get(self._key)
            if hubs is not None:
                hubs.discard(self)
                if not hubs:
                    del _local_hubs[self._key]
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self.listening.clear()

    @property
    def healthy(self) -> bool:
        return bool(self._tasks) and self.listening.is_set()

    # -- subscribers -------------------------------------------------------------------

    def subscribe(self, wants: Callable[[Fact], bool] | None = None) -> Subscriber:
        sub = Subscriber(self.queue_size, wants)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    # -- events in ---------------------------------------------------------------------

    def feed(self, events: Sequence[ev.StreamEvent]) -> None:
        """Queue events for resolution (call from the hub's event loop)."""
        if not self.subscribers:
            return  # nobody listens: nothing to resolve
        for e in events:
            try:
                self._incoming.put_nowait(e)
            except asyncio.QueueFull:
                self.dropped += 1
                log.warning("stream events dropped", extra={"dropped": self.dropped})
                return

    def feed_threadsafe(self, events: Sequence[ev.StreamEvent]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self.feed(events)
        else:
            loop.call_soon_threadsafe(self.feed, list(events))

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.feed(ev.decode(payload))

    # -- tasks -------------------------------------------------------------------------

    async def _resolve_loop(self) -> None:
        while True:
            first = await self._incoming.get()
            batch = [first]
            while len(batch) < BATCH and not self._incoming.empty():
                batch.append(self._incoming.get_nowait())
            if not self.subscribers:
                continue
            try:
                async with self.ctx.sessions() as session:
                    facts = await resolve(session, batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("stream events could not be resolved")
                continue
            for fact in facts:
                for sub in list(self.subscribers):
                    sub.offer(fact)

    def _dsn(self) -> str:
        url = self.ctx.engine.url.set(drivername="postgresql")
        return str(url.render_as_string(hide_password=False))

    async def _listen_loop(self) -> None:
        backoff = 0.5
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    self._dsn(), server_settings={"application_name": APPLICATION_NAME}
                )
                lost = asyncio.Event()
                conn.add_termination_listener(_setter(lost))
                await conn.add_listener(ev.CHANNEL, self._on_notify)
                self.listening.set()
                backoff = 0.5
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), PING_SECONDS)
                    if not lost.is_set():
                        await asyncio.wait_for(conn.execute("SELECT 1"), PING_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("stream LISTEN connection failed", extra={"error": repr(e)})
            finally:
                self.listening.clear()
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), 5)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)
