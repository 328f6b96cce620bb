"""Delivery under faults: dead, failing and rate-limiting peers, duplicates, and a SIGKILL.

Every test runs real instances (or real `t3r1` processes) against real peers on loopback
addresses, with the retry schedule shrunk by `backoff_scale` (0.002 in the test rig), and
checks both what the peers received and what the `deliveries`/`hosts` rows say.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from aiohttp import ClientError, ClientSession, ClientTimeout, web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.coops.posting import local_post
from t3r1_fed.db.engine import make_engine, make_sessionmaker
from t3r1_fed.db.models import Activity, Actor, Delivery, Follow, Host, InboxItem, Object, utcnow
from t3r1_fed.vocab.context import AS_PUBLIC
from tests.conftest import StartInstance
from tests.peer import Peer, PeerActor, wait_received
from tests.testrig import Databases, Instance, eventually

pytestmark = pytest.mark.federation

T = TypeVar("T")

AS = "https://www.w3.org/ns/activitystreams"


# ---- a peer that logs every inbox hit (failed ones too) and can be slow ------------------


@dataclass
class Hit:
    at: float  # time.monotonic() when the request arrived
    status: int  # what the peer answered
    path: str
    body: dict[str, Any]


@dataclass
class FaultPeer(Peer):
    """`tests.peer.Peer` plus a log of every inbox request and an optional per-request delay.

    `received` (inherited) only holds accepted deliveries; `hits` holds all of them, so
    retries that were refused can be counted and timed.
    """

    delay: float = 0.0
    hits: list[Hit] = field(default_factory=list)

    async def _inbox(self, request: web.Request) -> web.Response:
        at = time.monotonic()
        raw = await request.read()  # cached by aiohttp: the parent reads it again
        if self.delay:
            await asyncio.sleep(self.delay)  # a slow inbox: answers (and records) late
        resp = await super()._inbox(request)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = {}
        self.hits.append(Hit(at, resp.status, request.path, body))
        return resp

    def announce_hits(self) -> list[Hit]:
        return [h for h in self.hits if h.body.get("type") == "Announce"]

    def hits_for(self, activity_id: str) -> list[Hit]:
        return [h for h in self.hits if h.body.get("id") == activity_id]


# ---- helpers ------------------------------------------------------------------------------


async def until(check: Callable[[], Awaitable[T | None]], **kw: Any) -> T:
    """`eventually`, typed for checks that return a value or None."""
    got = await eventually(check, **kw)
    assert got is not None
    return got


async def follow(base: str, actor: PeerActor, coop: str) -> None:
    """`actor` sends a signed Follow of `coop` to the shared inbox of the instance at `base`."""
    status, _ = await actor.post(f"{base}/inbox", {
        "@context": AS, "id": f"{actor.peer.base}/follows/{actor.name}", "type": "Follow",
        "actor": actor.id, "object": coop,
    })
    assert status == 202, status


async def member_post(inst: Instance, text: str) -> str:
    async def go(ctx: Context, s: AsyncSession) -> str:
        return (await local_post(ctx, s, "alice", "syndicat", text)).uri

    return await inst.run(go)


@dataclass
class Row:
    id: int
    activity: str
    object_uri: str | None
    host: str
    state: str
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime
    updated_at: datetime
    locked_until: datetime | None


async def announce_rows(sessions: Any) -> list[Row]:
    """The cooperative's Announce deliveries (Accepts excluded), oldest first."""
    q = (select(Delivery.id, Activity.uri, Activity.object_uri, Delivery.host, Delivery.state,
                Delivery.attempts, Delivery.last_status, Delivery.last_error,
                Delivery.next_attempt_at, Delivery.updated_at, Delivery.locked_until)
         .join(Activity, Activity.id == Delivery.activity_id)
         .where(Activity.type == "Announce").order_by(Delivery.id))
    async with sessions() as s:
        return [Row(*r) for r in (await s.execute(q)).all()]


async def host_row(inst: Instance, domain: str) -> Host | None:
    async with inst.session() as s:
        return (await s.execute(select(Host).where(Host.domain == domain))).scalar()


def announce_pairs(peer: Peer) -> dict[str, set[str]]:
    """note URI → Announce forms the peer accepted: "activity" (1b12) and/or "object"."""
    out: dict[str, set[str]] = {}
    for a in peer.activities("Announce"):
        obj = a["object"]
        if isinstance(obj, dict):
            out.setdefault(obj["object"]["id"], set()).add("activity")
        else:
            out.setdefault(obj, set()).add("object")
    return out


async def setup_coop_and_peer(instances: StartInstance, *ips: str
                              ) -> tuple[Instance, str, list[FaultPeer]]:
    """An instance with alice's cooperative, and one follower on each peer (Accept seen)."""
    a = await instances("127.0.0.2")
    await a.create_user("alice")
    coop = await a.create_coop("syndicat", "alice")
    peers: list[FaultPeer] = []
    try:
        for ip in ips:
            peer = FaultPeer(ip)
            peers.append(peer)
            await peer.start()
            await follow(a.base, peer.actor("mona"), coop)
        for peer in peers:
            await wait_received(peer, 1, "Accept")
    except BaseException:
        for peer in peers:
            await peer.stop()
        raise
    return a, coop, peers


# ---- 1. a peer that is down, then comes back ----------------------------------------------


async def test_down_peer_gets_everything_after_it_restarts(instances: StartInstance) -> None:
    a, _coop, (peer,) = await setup_coop_and_peer(instances, "127.0.0.5")
    try:
        await peer.stop()  # connection refused from now on
        notes = [await member_post(a, f"Piquet de grève n°{i}") for i in range(3)]

        async def all_failed_once() -> list[Row] | None:
            rows = await announce_rows(a.session)
            ok = len(rows) == 6 and all(
                r.state == "pending" and r.attempts >= 1 and r.last_error and
                r.last_status is None for r in rows)
            return rows if ok else None

        first = {r.id: r for r in await until(all_failed_once, what="6 failed attempts")}
        assert all(r.host == peer.domain for r in first.values())
        host = await host_row(a, peer.domain)
        assert host is not None and host.consecutive_failures > 0
        assert host.last_success_at is not None  # the Accept got through before

        async def retried() -> list[Row] | None:
            rows = await announce_rows(a.session)
            more = sum(r.attempts for r in rows) > sum(r.attempts for r in first.values())
            return rows if more and all(r.state == "pending" for r in rows) else None

        second = await until(retried, what="retries while the peer is down")
        for r in second:  # attempts only grow, and the rows are still waiting
            assert r.attempts >= first[r.id].attempts and r.last_error
        assert max(r.attempts for r in second) >= 2
        host = await host_row(a, peer.domain)
        assert host is not None and host.consecutive_failures > 0

        back = utcnow()
        await peer.restart()
        await wait_received(peer, 6, "Announce", timeout=20)
        assert announce_pairs(peer) == {n: {"activity", "object"} for n in notes}

        async def all_done() -> list[Row] | None:
            rows = await announce_rows(a.session)
            return rows if all(r.state == "done" for r in rows) else None

        done = await until(all_done, what="delivery rows done")
        assert all(r.last_status == 202 and r.attempts >= 2 for r in done)
        host = await host_row(a, peer.domain)
        assert host is not None and host.consecutive_failures == 0
        assert host.last_success_at is not None and host.last_success_at >= back
        assert host.circuit_open_until is None and not host.unavailable
        assert len(peer.activities("Announce")) == 6  # each delivered once
    finally:
        await peer.stop()


# ---- 2. a peer answering 500, then recovering ---------------------------------------------


async def test_500_then_recovery_delivers_everything(instances: StartInstance) -> None:
    a, _coop, (peer,) = await setup_coop_and_peer(instances, "127.0.0.5")
    try:
        peer.mode = 500
        notes = [await member_post(a, f"Assemblée n°{i}") for i in range(2)]

        async def retrying() -> list[Row] | None:
            rows = await announce_rows(a.session)
            ok = (len(rows) == 4 and all(r.state == "pending" and r.last_status == 500
                                         for r in rows)
                  and max(r.attempts for r in rows) >= 2)
            return rows if ok else None

        await eventually(retrying, what="500s being retried")
        assert peer.activities("Announce") == []
        assert len(peer.announce_hits()) >= 5
        host = await host_row(a, peer.domain)
        assert host is not None and host.consecutive_failures > 0  # 5xx counts against it

        peer.mode = None
        await wait_received(peer, 4, "Announce", timeout=20)
        assert announce_pairs(peer) == {n: {"activity", "object"} for n in notes}

        async def all_done() -> bool:
            return all(r.state == "done" for r in await announce_rows(a.session))

        await eventually(all_done, what="delivery rows done")
        host = await host_row(a, peer.domain)
        assert host is not None and host.consecutive_failures == 0
    finally:
        await peer.stop()


# ---- 3. 429 with Retry-After --------------------------------------------------------------


async def test_429_retry_after_is_honoured(instances: StartInstance) -> None:
    a, _coop, (peer,) = await setup_coop_and_peer(instances, "127.0.0.5")
    try:
        peer.mode = (429, 2)
        note = await member_post(a, "Préavis de grève déposé")

        async def limited() -> list[Row] | None:
            rows = await announce_rows(a.session)
            ok = len(rows) == 2 and all(r.last_status == 429 for r in rows)
            return rows if ok else None

        rows = await until(limited, what="429 recorded")
        peer.mode = None  # the next try will succeed: it must not come before 2 s
        for r in rows:
            assert r.state == "pending" and r.attempts == 1
            # backoff_scale 0.002 alone would retry within ~30 ms; Retry-After wins.
            assert r.next_attempt_at - r.updated_at >= timedelta(seconds=2) - timedelta(
                milliseconds=1)
        await wait_received(peer, 2, "Announce", timeout=10)
        assert announce_pairs(peer) == {note: {"activity", "object"}}
        for r in rows:
            hits = peer.hits_for(r.activity)
            assert [h.status for h in hits] == [429, 202], hits
            waited = hits[1].at - hits[0].at
            assert 1.95 <= waited < 10.0, f"retried after {waited:.3f}s"
    finally:
        await peer.stop()


# ---- 4. permanent failures: 410, 400, 401 -------------------------------------------------


async def test_permanent_failures_end_the_row(instances: StartInstance) -> None:
    a, _coop, peers = await setup_coop_and_peer(instances, "127.0.0.5", "127.0.0.6", "127.0.0.7")
    gone, bad, unauth = peers
    try:
        gone.mode, bad.mode, unauth.mode = 410, 400, 401
        await member_post(a, "Motion du congrès")
        expected = {gone.domain: ("gone", 1, 410), bad.domain: ("failed", 1, 400),
                    unauth.domain: ("failed", 2, 401)}

        async def settled() -> list[Row] | None:
            rows = await announce_rows(a.session)
            ok = len(rows) == 6 and all(r.state != "pending" for r in rows)
            return rows if ok else None

        rows = await until(settled, what="rows ended")
        for r in rows:
            assert (r.state, r.attempts, r.last_status) == expected[r.host], r
            assert r.locked_until is None
        # One try each for 410 and 400, two for 401 (retried once for a key refresh).
        tries = [len(p.announce_hits()) for p in peers]
        assert tries == [2, 2, 4], tries
        await asyncio.sleep(0.3)  # ~10x the first retry delay at this backoff scale
        assert [(r.state, r.attempts) for r in await announce_rows(a.session)] == [
            (r.state, r.attempts) for r in rows]
        assert [len(p.announce_hits()) for p in peers] == tries
        assert all([r.body["type"] for r in p.received] == ["Accept"] for p in peers)
        for p in peers:  # a peer that answers, even 4xx, is healthy
            host = await host_row(a, p.domain)
            assert host is not None and host.consecutive_failures == 0
    finally:
        for p in peers:
            await p.stop()


# ---- 5. the same activity three times -----------------------------------------------------


async def test_duplicate_inbound_activity_has_one_effect(instances: StartInstance) -> None:
    a, coop, (peer,) = await setup_coop_and_peer(instances, "127.0.0.5")
    try:
        mona = peer.actors["mona"]
        note = peer.note(mona, "Caisse de grève ouverte", to=[AS_PUBLIC], cc=[coop],
                         tag=[{"type": "Mention", "href": coop, "name": f"@syndicat@{a.domain}"}])
        create = {"@context": AS, "id": note["id"] + "/activity", "type": "Create",
                  "actor": mona.id, "object": {k: v for k, v in note.items() if k != "@context"},
                  "to": note["to"], "cc": note["cc"]}
        coop_inbox, shared_inbox = f"{coop}/inbox", f"{a.base}/inbox"
        body = orjson.dumps(create)
        signed = mona.signed("POST", coop_inbox, body)

        async def send(url: str, headers: dict[str, str]) -> int:
            async with ClientSession() as http, http.post(url, data=body, headers=headers) as r:
                return r.status

        assert await send(coop_inbox, signed) == 202

        async def item_states() -> list[str]:
            async with a.session() as s:
                q = select(InboxItem.state).where(InboxItem.activity_uri == create["id"])
                return list((await s.execute(q)).scalars())

        async def processed() -> list[str] | None:
            states = await item_states()
            return states if states and states[0] != "pending" else None

        assert await eventually(processed, what="first copy processed") == ["done"]
        # Then, at once: the very same signed request again (a replayed redelivery), and a
        # copy freshly signed for the shared inbox (as a server delivering to both would).
        statuses = list(await asyncio.gather(
            send(coop_inbox, signed),
            send(shared_inbox, mona.signed("POST", shared_inbox, body))))
        assert statuses == [202, 202]

        await wait_received(peer, 2, "Announce")

        async def quiet() -> bool:
            async with a.session() as s:
                pend_in = (await s.execute(select(func.count()).select_from(InboxItem).where(
                    InboxItem.state == "pending"))).scalar_one()
                pend_out = (await s.execute(select(func.count()).select_from(Delivery).where(
                    Delivery.state == "pending"))).scalar_one()
            return pend_in == 0 and pend_out == 0

        await eventually(quiet, what="queues empty")
        await asyncio.sleep(0.3)  # room for a (wrong) second redistribution to show up
        assert await item_states() == ["done"]
        async with a.session() as s:
            objs = (await s.execute(select(func.count()).select_from(Object).where(
                Object.uri == note["id"]))).scalar_one()
            announces = (await s.execute(select(func.count()).select_from(Activity).where(
                Activity.type == "Announce"))).scalar_one()
        assert objs == 1
        assert announces == 2  # one redistribution: Announce(Create) + Announce(note)
        assert len(peer.activities("Announce")) == 2
        assert announce_pairs(peer) == {note["id"]: {"activity", "object"}}
    finally:
        await peer.stop()


# ---- 6. SIGKILL mid fan-out, real processes -----------------------------------------------

PEER_IPS = ("127.0.0.5", "127.0.0.6", "127.0.0.7")
ACTORS_PER_PEER = 10  # 30 followers, collapsing to 3 shared inboxes
POSTS = 3
SLOW_INBOX = 0.5  # seconds per request while the fan-out runs
CONCURRENCY = 4  # T3R1_WORKER_CONCURRENCY: 18 deliveries take ~3 s


def t3r1_command() -> list[str]:
    script = Path(sys.executable).parent / "t3r1"
    return [str(script)] if script.exists() else [sys.executable, "-m", "t3r1_fed.cli"]


def read(log: Path) -> str:
    return log.read_text(errors="replace")


def free_port(ip: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((ip, 0))
        return int(s.getsockname()[1])


def serve_ip() -> str:
    """A loopback address of this pytest-xdist worker's own, for `t3r1 serve`: the port that
    `free_port` found is free again until the server binds it (seconds later), and no other
    worker's instance (on 127.0.0.2) can take it in between."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    return f"127.0.{100 + int(worker)}.2"


class Processes:
    """`t3r1` subprocesses of one test; whatever is left running is killed at the end."""

    def __init__(self, data: Path, env: dict[str, str], logs: Path) -> None:
        self.data, self.env, self.logs = data, env, logs
        self.running: list[asyncio.subprocess.Process] = []
        self.n = 0

    async def run(self, *args: str, timeout: float = 60) -> str:
        proc = await asyncio.create_subprocess_exec(
            *t3r1_command(), "--data-dir", str(self.data), *args, env=self.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        self.running.append(proc)
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
        self.running.remove(proc)
        assert proc.returncode == 0, f"t3r1 {' '.join(args)}: {err.decode()}"
        return out.decode()

    async def start(self, *args: str) -> tuple[asyncio.subprocess.Process, Path]:
        self.n += 1
        log = self.logs / f"t3r1-{self.n}-{args[0]}.log"
        with log.open("wb") as f:
            proc = await asyncio.create_subprocess_exec(
                *t3r1_command(), "--data-dir", str(self.data), *args, env=self.env,
                stdout=f, stderr=asyncio.subprocess.STDOUT)
        self.running.append(proc)
        return proc, log

    async def stop(self, proc: asyncio.subprocess.Process, sig: int = signal.SIGTERM) -> None:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if proc in self.running:
            self.running.remove(proc)

    async def close(self) -> None:
        for proc in list(self.running):
            await self.stop(proc, signal.SIGKILL)


async def wait_serving(proc: asyncio.subprocess.Process, log: Path, base: str) -> None:
    async def up() -> bool:
        if proc.returncode is not None:
            raise AssertionError(f"t3r1 serve exited: {read(log)}")
        try:
            async with ClientSession(timeout=ClientTimeout(total=2)) as s, s.get(
                    f"{base}/.well-known/nodeinfo") as r:
                return r.status == 200
        except (ClientError, OSError, TimeoutError):
            return False

    await eventually(up, timeout=30, interval=0.1, what="t3r1 serve answering")


def delivered(peers: list[FaultPeer], ids: set[str] | None = None) -> set[tuple[str, str]]:
    """(peer domain, activity id) of the Announces accepted so far, duplicates collapsed."""
    return {(p.domain, r.body["id"]) for p in peers for r in p.received
            if r.body.get("type") == "Announce" and (ids is None or r.body["id"] in ids)}


async def test_sigkill_mid_fanout_loses_nothing(databases: Databases, backend: str,
                                                tmp_path: Path) -> None:
    url = await databases.get(backend)
    data = tmp_path / "data"
    ip = serve_ip()
    port = free_port(ip)
    base = f"http://{ip}:{port}"
    coop = f"{base}/c/syndicat"
    env = {k: v for k, v in os.environ.items() if not k.startswith("T3R1_")}
    env.update({
        "T3R1_ALLOW_PRIVATE_NETWORKS": "127.0.0.0/8", "T3R1_BACKOFF_SCALE": "0.002",
        "T3R1_LEASE_SECONDS": "2", "T3R1_POLL_INTERVAL": "0.05", "T3R1_DATABASE_URL": url,
        "T3R1_CLI_DELIVER": "0", "T3R1_WORKER_CONCURRENCY": str(CONCURRENCY),
        "T3R1_LOG_LEVEL": "WARNING",
    })
    procs = Processes(data, env, tmp_path)
    peers: list[FaultPeer] = []
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    try:
        await procs.run("init", "--domain", f"{ip}:{port}", "--scheme", "http")
        serve, log = await procs.start("serve", "--host", ip, "--port", str(port))
        await procs.run("admin", "create-user", "alice", "--password", "password-alice")
        await procs.run("admin", "create-coop", "syndicat", "--owner", "alice")
        for ip in PEER_IPS:
            peers.append(FaultPeer(ip))
            await peers[-1].start()
        actors = [p.actor(f"m{i:02d}") for p in peers for i in range(ACTORS_PER_PEER)]
        await wait_serving(serve, log, base)

        # Many followers on 3 hosts, each Follow signed and POSTed to the running server.
        gate = asyncio.Semaphore(16)

        async def send_follow(actor: PeerActor) -> None:
            async with gate:
                await follow(base, actor, coop)

        await asyncio.gather(*(send_follow(x) for x in actors))

        async def all_accepted() -> bool:
            async with sessions() as s:
                n = (await s.execute(select(func.count()).select_from(Follow)
                                     .join(Actor, Actor.id == Follow.followee_id)
                                     .where(Actor.uri == coop, Follow.state == "accepted")
                                     )).scalar_one()
            return n == len(actors) and sum(len(p.activities("Accept")) for p in peers) == n

        await eventually(all_accepted, timeout=40, what="every follow accepted")

        # Slow inboxes (staggered, so completions do not line up), then posts from the CLI
        # with inline delivery off: the running server does the fan-out.
        for i, p in enumerate(peers):
            p.delay = SLOW_INBOX + 0.05 * (i - 1)
        t_post = time.monotonic()
        posting = asyncio.gather(*(
            procs.run("admin", "post", "alice", "syndicat", f"Appel à la grève n°{i}")
            for i in range(POSTS)))

        async def announce_ids() -> set[str] | None:
            async with sessions() as s:
                got = set((await s.execute(select(Activity.uri).where(
                    Activity.type == "Announce"))).scalars())
            return got if len(got) == 2 * POSTS else None

        try:
            # Every post committed (the last fan-out cannot be done yet: each request takes
            # ~SLOW_INBOX s) and something delivered; then kill in the middle of a request.
            ids = await until(announce_ids, timeout=60, interval=0.02,
                                   what="all posts committed")
            total = len(ids) * len(peers)  # one shared inbox per host per activity
            await eventually(lambda: _truthy(len(delivered(peers, ids))), timeout=30,
                             interval=0.01, what="first deliveries")
            await asyncio.sleep(SLOW_INBOX / 2)
            at_kill = len(delivered(peers, ids))
            serve.send_signal(signal.SIGKILL)
            await serve.wait()
        finally:
            outs = await posting
        t_kill = time.monotonic()
        notes = [o.strip().splitlines()[0] for o in outs]
        assert 0 < at_kill < total, (at_kill, total)
        for p in peers:
            p.delay = 0.0
        rows = await announce_rows(sessions)
        assert len(rows) == total
        pending = [r for r in rows if r.state == "pending"]
        leased = [r for r in pending if r.locked_until is not None]  # the dead server's
        assert pending, "every row was recorded done before the kill"
        assert leased, "no delivery was in flight at the kill"

        # A fresh worker process takes over, the dead one's leases included.
        worker, wlog = await procs.start("worker")

        async def everything() -> bool:
            if worker.returncode is not None:
                raise AssertionError(f"t3r1 worker exited: {read(wlog)}")
            if len(delivered(peers, ids)) < total:
                return False
            return all(r.state == "done" for r in await announce_rows(sessions))

        await eventually(everything, timeout=40, what="every activity at every shared inbox")
        t_done = time.monotonic()
        async with sessions() as s:
            left = (await s.execute(select(func.count()).select_from(Delivery).where(
                Delivery.state == "pending"))).scalar_one()
        assert left == 0
        rows = await announce_rows(sessions)
        assert {(r.host, r.activity) for r in rows} == delivered(peers, ids)
        retried = {r.id for r in rows if r.attempts > 1}
        assert {r.id for r in leased} <= retried  # in flight at the kill: sent again

        # Each host got each activity at its shared inbox; duplicates (at-least-once) carry
        # the same id and the same body, so a receiver dedupes them by id.
        duplicates = 0
        for p in peers:
            got = [r for r in p.received if r.body.get("id") in ids]
            assert all(r.path == "/inbox" for r in got)
            counts = Counter(r.body["id"] for r in got)
            assert set(counts) == ids
            duplicates += sum(c - 1 for c in counts.values())
            for aid, c in counts.items():
                if c > 1:
                    bodies = [r.body for r in got if r.body["id"] == aid]
                    assert all(b == bodies[0] for b in bodies)
            assert announce_pairs(p) == {n: {"activity", "object"} for n in notes}
        print(f"\n[{backend}] {len(actors)} followers, fan-out of {total} deliveries: "
              f"{at_kill} delivered at SIGKILL ({t_kill - t_post:.2f}s after posting), "
              f"{len(pending)} pending of which {len(leased)} leased; {duplicates} duplicate "
              f"receipts; all delivered {t_done - t_kill:.2f}s after the kill")
        await procs.stop(worker)
        assert worker.returncode == 0, read(wlog)
    finally:
        await procs.close()
        for p in peers:
            await p.stop()
        await engine.dispose()
        await databases.cleanup()


async def _truthy(value: int) -> int:
    return value
