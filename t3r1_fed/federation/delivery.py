"""The delivery worker: claims due rows, signs, POSTs, and applies the failure policy.

Policy (FEDERATION.md, "Delivery"): 2xx ends the row; 410 and other permanent 4xx end it
as gone/failed; 401 is retried once (the peer may have been refreshing our key); 408, 429
and 5xx and transport errors are retried on the backoff schedule, honouring Retry-After,
until `delivery_give_up_after`. Per host, consecutive transport/5xx failures open a circuit
(rows wait instead of hammering the host); a host failing without any success for
`host_unavailable_after` is marked unavailable (no new rows are queued for it) and revived
as soon as it answers or sends us an activity.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.db.models import Activity, Actor, Delivery, Host, utcnow
from t3r1_fed.db.queue import claim_deliveries
from t3r1_fed.federation.backoff import circuit_delay, next_delay
from t3r1_fed.federation.http_client import FetchError, PostResult
from t3r1_fed.federation.httpsig import sign_headers
from t3r1_fed.federation.keys import load_private_key

log = logging.getLogger("t3r1.delivery")

RETRYABLE = {408, 429}


@dataclass(frozen=True)
class Outgoing:
    body: bytes
    digest: str
    key_id: str
    private_key_pem: str


@dataclass(frozen=True)
class Outcome:
    state: str  # done | pending | failed | gone
    status: int | None
    error: str | None
    retry_after: float | None
    host_ok: bool | None  # True: host answered; False: transport/5xx failure; None: neutral


def classify(status: int | None, attempts: int, error: str | None = None,
             retry_after: float | None = None) -> Outcome:
    """Map a POST result to what happens to the row (pure, unit-tested)."""
    if status is None:
        return Outcome("pending", None, error, None, False)
    if 200 <= status < 300:
        return Outcome("done", status, None, None, True)
    if status == 410:
        return Outcome("gone", status, error, None, True)
    if status == 401:
        return Outcome("pending" if attempts < 2 else "failed", status, error, None, True)
    if status in RETRYABLE:
        return Outcome("pending", status, error, retry_after, True)
    if 400 <= status < 500:
        return Outcome("failed", status, error, None, True)
    return Outcome("pending", status, error, retry_after, False)


async def _load_outgoing(session: AsyncSession, activity_ids: set[int]) -> dict[int, Outgoing]:
    q = (
        select(Activity.id, Activity.body, Activity.digest, Actor.key_id, Actor.private_key_pem)
        .join(Actor, Actor.id == Activity.actor_id)
        .where(Activity.id.in_(activity_ids))
    )
    out: dict[int, Outgoing] = {}
    for aid, body, digest, key_id, pem in (await session.execute(q)).all():
        if key_id and pem:
            out[aid] = Outgoing(body.encode(), digest, key_id, pem)
    return out


async def deliver_one(ctx: Context, inbox: str, out: Outgoing) -> PostResult:
    headers = sign_headers(
        "POST", inbox, key_id=out.key_id, private_key=load_private_key(out.private_key_pem),
        body=out.body, digest=out.digest,
    )
    return await ctx.http.post(inbox, out.body, headers=headers)


async def _attempt(ctx: Context, row: Any, out: Outgoing | None) -> Outcome:
    if out is None:
        return Outcome("failed", None, "activity or signing key missing", None, None)
    try:
        res = await deliver_one(ctx, row.inbox, out)
    except FetchError as e:
        return classify(None, row.attempts, f"{type(e).__name__}: {e}")
    err = None if res.status < 300 else res.body_head[:500].decode("utf-8", "replace")
    return classify(res.status, row.attempts, err, res.retry_after)


def _upsert_host(ctx: Context) -> Any:
    return (postgresql.insert if ctx.is_postgres else sqlite.insert)(Host)


def _record_values(ctx: Context, row: Any, outcome: Outcome) -> dict[str, Any]:
    """The column values that record `outcome` on delivery `row`."""
    now = utcnow()
    values: dict[str, Any] = {"locked_until": None, "last_status": outcome.status,
                              "last_error": outcome.error, "updated_at": now}
    state = outcome.state
    if state == "pending":
        delay = next_delay(row.attempts, outcome.retry_after, scale=ctx.settings.backoff_scale)
        created: datetime = row.created_at
        give_up = created + timedelta(seconds=ctx.settings.delivery_give_up_after)
        if delay is None or now + timedelta(seconds=delay) > give_up:
            state = "failed"
        else:
            values["next_attempt_at"] = now + timedelta(seconds=delay)
    values["state"] = state
    return values


async def _record_many(ctx: Context, session: AsyncSession,
                       results: list[tuple[Any, Outcome]]) -> None:
    """Record outcomes: one executemany UPDATE per set of columns, not one statement a row.

    (Building, caching and running an ORM UPDATE per delivery cost more CPU than signing it.)
    """
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    states: list[str] = []
    for row, outcome in results:
        values = _record_values(ctx, row, outcome)
        states.append(values["state"])
        keys = tuple(sorted(values))
        groups.setdefault(keys, []).append(
            {"b_id": row.id, **{f"b_{k}": v for k, v in values.items()}})
    for keys, params in groups.items():
        await session.execute(_record_stmt(keys), params)
    for (row, outcome), state in zip(results, states, strict=True):
        log.info(
            "delivery %s", state,
            extra={"delivery": row.id, "inbox": row.inbox, "host": row.host,
                   "status": outcome.status, "attempt": row.attempts, "error": outcome.error},
        )


@functools.lru_cache(maxsize=16)
def _record_stmt(keys: tuple[str, ...]) -> Any:
    """UPDATE deliveries SET <keys> WHERE id = :b_id, built once per set of columns."""
    table = cast(Table, Delivery.__table__)
    return update(table).where(table.c.id == bindparam("b_id")).values(
        {k: bindparam(f"b_{k}") for k in keys})


@functools.lru_cache(maxsize=2)
def _hosts_ok_stmt(postgres: bool) -> Any:
    """The upsert that records a host's success, built once per dialect."""
    table = cast(Table, Host.__table__)
    ins = (postgresql.insert if postgres else sqlite.insert)(table)
    return ins.on_conflict_do_update(
        index_elements=[table.c.domain],
        set_={"consecutive_failures": 0, "first_failure_at": None,
              "last_success_at": ins.excluded.last_success_at, "circuit_open_until": None,
              "unavailable": False},
    )


async def _hosts_ok(ctx: Context, session: AsyncSession, hosts: list[str]) -> None:
    """_host_health(…, ok=True) for several hosts: one executemany upsert, in `hosts` order."""
    now = utcnow()
    await session.execute(_hosts_ok_stmt(ctx.is_postgres), [
        {"domain": host, "consecutive_failures": 0, "last_success_at": now, "unavailable": False}
        for host in hosts
    ])


async def _host_health(ctx: Context, session: AsyncSession, host: str, ok: bool) -> None:
    now = utcnow()
    ins = _upsert_host(ctx)
    if ok:
        stmt = ins.values(domain=host, consecutive_failures=0, last_success_at=now,
                          unavailable=False).on_conflict_do_update(
            index_elements=[Host.domain],
            set_={"consecutive_failures": 0, "first_failure_at": None, "last_success_at": now,
                  "circuit_open_until": None, "unavailable": False},
        )
        await session.execute(stmt)
        return
    await session.execute(
        ins.values(domain=host, consecutive_failures=0, first_failure_at=now, unavailable=False)
        .on_conflict_do_nothing(index_elements=[Host.domain])
    )
    h = (await session.execute(select(Host).where(Host.domain == host))).scalar_one()
    h.consecutive_failures += 1
    if h.first_failure_at is None:
        h.first_failure_at = now
    open_for = circuit_delay(h.consecutive_failures, scale=ctx.settings.backoff_scale)
    if open_for:
        h.circuit_open_until = now + timedelta(seconds=open_for)
    since_success = now - (h.last_success_at or h.first_failure_at)
    if since_success > timedelta(seconds=ctx.settings.host_unavailable_after):
        h.unavailable = True


async def revive_host(session: AsyncSession, host: str) -> bool:
    """The host is alive (it sent us something): close its circuit and retry its rows now."""
    h = (await session.execute(select(Host).where(Host.domain == host))).scalar()
    healthy = h is None or (
        not h.unavailable and h.circuit_open_until is None and not h.consecutive_failures
    )
    if h is None or healthy:
        return False
    h.unavailable = False
    h.circuit_open_until = None
    h.consecutive_failures = 0
    h.first_failure_at = None
    await session.execute(
        update(Delivery).where(Delivery.host == host, Delivery.state == "pending")
        .values(next_attempt_at=utcnow())
    )
    return True


class DeliveryPump:
    """Keeps up to `worker_concurrency` POSTs in flight; records outcomes in batches.

    A slow or dead host occupies one slot until its timeout, never the whole queue.
    """

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.capacity = ctx.settings.worker_concurrency
        self.inflight: set[asyncio.Task[tuple[Any, Outcome]]] = set()
        self.done: list[tuple[Any, Outcome]] = []
        self._outgoing: dict[int, Outgoing | None] = {}

    async def _record_and_claim(self, n: int) -> int:
        """Record the finished deliveries and claim up to `n` due rows, in one transaction
        (one commit per step instead of two); start a task per claimed row."""
        results, self.done = self.done, []
        if not results and n <= 0:
            return 0
        rows: list[Any] = []
        async with self.ctx.sessions() as session, session.begin():
            if results:
                await self._record(session, results)
            if n > 0:
                await session.flush()  # a circuit just opened keeps its host's rows waiting
                rows = await claim_deliveries(
                    session, n, self.ctx.settings.lease_seconds, commit=False)
                need = {r.activity_id for r in rows} - self._outgoing.keys()
                if need:
                    loaded = await _load_outgoing(session, need)
                    for aid in need:
                        self._outgoing[aid] = loaded.get(aid)
        if len(self._outgoing) > 256:  # small cache: a fan-out reuses its activity's body
            keep = {r.activity_id for r in rows}
            self._outgoing = {k: v for k, v in self._outgoing.items() if k in keep}
        for row in rows:  # after the commit: the claims are durable
            task = asyncio.create_task(self._one(row, self._outgoing.get(row.activity_id)))
            self.inflight.add(task)
        return len(rows)

    async def _one(self, row: Any, out: Outgoing | None) -> tuple[Any, Outcome]:
        return row, await _attempt(self.ctx, row, out)

    async def _record(self, session: AsyncSession, results: list[tuple[Any, Outcome]]) -> None:
        host_ok: dict[str, bool] = {}
        await _record_many(self.ctx, session, results)
        for row, outcome in results:
            if outcome.host_ok is not None:
                host_ok[row.host] = host_ok.get(row.host, False) or outcome.host_ok
        if host_ok and all(host_ok.values()):  # the usual case: one statement
            await _hosts_ok(self.ctx, session, sorted(host_ok))
            return
        for host, ok in sorted(host_ok.items()):  # hosts in sorted order: no deadlocks
            await _host_health(self.ctx, session, host, ok)

    async def step(self, *, wait: float) -> bool:
        """Wait up to `wait` s for a completion, then record what finished and claim what
        fits, in one transaction. True if busy."""
        if self.inflight:
            finished, _ = await asyncio.wait(
                self.inflight, timeout=wait, return_when=asyncio.FIRST_COMPLETED
            )
            # Gather the others that are already done too, so records are batched.
            finished |= {t for t in self.inflight if t.done()}
            for t in finished:
                self.inflight.discard(t)
                self.done.append(t.result())
        claimed = await self._record_and_claim(self.capacity - len(self.inflight))
        return bool(claimed or self.inflight)

    async def run(self, stop: asyncio.Event) -> None:
        wake = self.ctx.wake_deliveries
        while not stop.is_set():
            wake.clear()  # before the claim: a wake-up during the step is not lost
            try:
                busy = await self.step(wait=0.05)
            except Exception:
                log.exception("delivery pump step failed")
                busy = False
                await asyncio.sleep(1.0)
            if not busy:
                try:
                    await asyncio.wait_for(wake.wait(), self.ctx.settings.poll_interval)
                except TimeoutError:
                    pass
        await self.close()

    async def close(self) -> None:
        if self.inflight:
            for t in self.inflight:
                t.cancel()
            await asyncio.gather(*self.inflight, return_exceptions=True)
            self.inflight.clear()
        # Cancelled rows keep their lease and are retried when it runs out.

    async def drain(self, timeout: float = 30.0) -> None:
        """Process until nothing is due and nothing is in flight (tests, CLI)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            if not await self.step(wait=0.05):
                return
        raise TimeoutError("delivery queue did not drain")
