"""Fan-out benchmark: signed deliveries per second from one instance to 100 loopback hosts.

    .venv/bin/python bench/fanout.py [--db sqlite|postgresql] [--variant both|shared|personal]
                                     [--posts-shared 10] [--posts-personal 2]
                                     [--profile out.svg|out.json]

Setup (not timed): a scratch database, `t3r1 init`, a member `alice` and a cooperative
`bench`; a sink process pinned to core 1 listening on 127.0.1.1 … 127.0.1.100 (one port,
every address), answering 202 at once and counting; 1,000 remote followers of the
cooperative (10 per host, in shuffled order) written straight into the database (actors and
accepted follows), to save the time of 1,000 Follow handshakes; `t3r1 worker` pinned to
core 0 (T3R1_POLL_INTERVAL=0.1, so an idle worker notices new rows within 0.1 s: the
publishing process is not the worker's, so it cannot wake it directly).

Timed, per variant: alice posts P times into the cooperative (in this process, as the web
handler would); each post makes the cooperative send two Announces (FEP-1b12 and the
Mastodon-style boost) to every follower inbox. The clock runs from the first publish to the
last delivery row marked done (its `updated_at`).
- shared: the followers have a shared inbox per host → 100 deliveries per activity.
- personal: no shared inboxes → 1,000 signed deliveries per activity.
Printed: deliveries/s, the one-core RSA-2048 PKCS1v15-SHA256 sign rate measured in this run
on core 0, their ratio (goal ≥ 0.60), worker CPU per delivery, and the worker's peak RSS.
Every delivery must end `done`, the sink must have counted each one, and sample requests
must carry valid signatures, or the run fails.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    BENCH,
    PYTHON,
    T3R1,
    VENV_BIN,
    Child,
    RsaRate,
    ScratchDb,
    base_env,
    machine_facts,
    mib,
    pinned,
    rsa_rate,
    t3r1,
)

GOAL = 0.60
INSTANCE = "127.0.0.3:8080"  # the instance's domain; nothing listens there, the worker sends
SINK_PREFIX = "127.0.1"
HOSTS = 100
FOLLOWERS = 1000


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    p.add_argument("--variant", choices=["both", "shared", "personal"], default="both")
    p.add_argument("--posts-shared", type=int, default=10, help="posts, shared-inbox variant")
    p.add_argument("--posts-personal", type=int, default=2, help="posts, personal variant")
    p.add_argument("--worker-concurrency", type=int, default=None,
                   help="T3R1_WORKER_CONCURRENCY for the worker (default: the product's)")
    p.add_argument("--profile", default=None,
                   help="py-spy record the worker during the timed phases (.svg or .json)")
    p.add_argument("--cprofile", default=None,
                   help="run the worker under cProfile, writing pstats to this path (slower)")
    p.add_argument("--json", action="store_true", help="also print the result as JSON")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = p.parse_args()
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})  # the publisher and poller share core 1 with the sink
    t_start = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="t3r1-bench-fanout-"))
    db = ScratchDb(args.db, tmp)
    children: list[Child] = []
    try:
        return asyncio.run(run(args, tmp, db, children, t_start))
    finally:
        for c in children:
            c.stop()
        asyncio.run(db.drop())
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}")


async def register_followers(ctx: Any, port: int, *, shared: bool) -> None:
    from sqlalchemy import insert, select

    from t3r1_fed.db.models import Actor, Follow

    rng = random.Random(42)
    order = list(range(FOLLOWERS))
    rng.shuffle(order)
    rows = []
    for i in order:
        host = f"{SINK_PREFIX}.{i % HOSTS + 1}:{port}"
        uri = f"http://{host}/users/u{i}"
        rows.append({
            "uri": uri, "local": False, "type": "Person", "username": f"u{i}",
            "domain": host, "inbox": f"{uri}/inbox",
            "shared_inbox": f"http://{host}/inbox" if shared else None,
            "followers_url": f"{uri}/followers", "key_id": f"{uri}#main-key",
            "fetched_at": datetime.now(UTC),
        })
    async with ctx.sessions() as s, s.begin():
        await s.execute(insert(Actor), rows)
        coop_id = (await s.execute(
            select(Actor.id).where(Actor.uri == ctx.uris.coop("bench")))).scalar_one()
        ids = dict((await s.execute(
            select(Actor.uri, Actor.id).where(Actor.local.is_(False)))).all())
        await s.execute(insert(Follow), [
            {"uri": f"{r['uri']}#follow", "follower_id": ids[r["uri"]], "followee_id": coop_id,
             "state": "accepted"} for r in rows])


async def set_shared(ctx: Any, port: int, shared: bool) -> None:
    from sqlalchemy import select, update

    from t3r1_fed.db.models import Actor

    async with ctx.sessions() as s, s.begin():
        if not shared:
            await s.execute(update(Actor).where(Actor.local.is_(False)).values(shared_inbox=None))
            return
        for aid, domain in (await s.execute(
                select(Actor.id, Actor.domain).where(Actor.local.is_(False)))).all():
            await s.execute(update(Actor).where(Actor.id == aid)
                            .values(shared_inbox=f"http://{domain}/inbox"))


def _utc(value: Any) -> datetime | None:
    if isinstance(value, str):  # SQLite: min()/max() of the column's text
        value = datetime.fromisoformat(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value  # type: ignore[no-any-return]


async def delivery_state(ctx: Any, after_id: int
                         ) -> tuple[dict[str, int], datetime | None, datetime | None]:
    """Counts by state of the deliveries after `after_id`, first and last `done` time."""
    from sqlalchemy import func, select

    from t3r1_fed.db.models import Delivery

    async with ctx.sessions() as s:
        counts = dict((await s.execute(
            select(Delivery.state, func.count()).where(Delivery.id > after_id)
            .group_by(Delivery.state))).all())
        first, last = (await s.execute(
            select(func.min(Delivery.updated_at), func.max(Delivery.updated_at)).where(
                Delivery.id > after_id, Delivery.state == "done"))).one()
    return counts, _utc(first), _utc(last)


async def max_delivery_id(ctx: Any) -> int:
    from sqlalchemy import func, select

    from t3r1_fed.db.models import Delivery

    async with ctx.sessions() as s:
        return int((await s.execute(select(func.max(Delivery.id)))).scalar() or 0)


def sink_report(sink: Child) -> dict[str, Any]:
    sink.proc.send_signal(signal.SIGUSR1)
    return dict(json.loads(sink.expect('{"total"', 30)))


def check_samples(samples: list[dict[str, str]], pem: str) -> tuple[int, int]:
    """Verify the signatures of the requests the sink kept, with the cooperative's key."""
    from multidict import CIMultiDict

    from t3r1_fed.federation.httpsig import parse_request_signature
    from t3r1_fed.federation.keys import load_public_key

    ok = 0
    for smp in samples:
        lines = smp["head"].split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers: CIMultiDict[str] = CIMultiDict()
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers.add(k.strip(), v.strip())
        body = base64.b64decode(smp["body"])
        sig = parse_request_signature(method, target, headers, body)
        ok += bool(sig.verify(load_public_key(pem)))
    return ok, len(samples)


async def run(args: argparse.Namespace, tmp: Path, db: ScratchDb, children: list[Child],
              t_start: float) -> int:
    def step(what: str) -> None:
        print(f"[{time.monotonic() - t_start:6.1f} s] {what}", file=sys.stderr, flush=True)

    facts = machine_facts()
    step(f"load average {os.getloadavg()[0]:.2f}; database, t3r1 init, member and cooperative")
    url = await db.create()
    data = tmp / "data"
    env = base_env(data, url, T3R1_POLL_INTERVAL="0.1", T3R1_LOG_LEVEL="INFO")
    if args.worker_concurrency:
        env["T3R1_WORKER_CONCURRENCY"] = str(args.worker_concurrency)
    t3r1(env, "init", "--domain", INSTANCE, "--scheme", "http")
    t3r1(env, "admin", "create-user", "alice", "--password", "bench-password")
    t3r1(env, "admin", "create-coop", "bench", "--owner", "alice")

    step("sink on 127.0.1.1-100, followers")
    sink = Child.start("sink", pinned(1, [PYTHON, str(BENCH / "_sink.py"), SINK_PREFIX,
                                          str(HOSTS)]), log=tmp / "sink.log")
    children.append(sink)
    port = int(json.loads(sink.readline(30))["port"])

    from sqlalchemy import select

    from t3r1_fed.config import Settings
    from t3r1_fed.context import Context
    from t3r1_fed.coops.posting import local_post
    from t3r1_fed.db.models import Actor

    settings = Settings.load(env=env, data_dir=data)
    ctx = Context.create(settings)
    try:
        variants = ["shared", "personal"] if args.variant == "both" else [args.variant]
        await register_followers(ctx, port, shared=variants[0] == "shared")
        async with ctx.sessions() as s:
            coop_pem = (await s.execute(select(Actor.public_key_pem).where(
                Actor.uri == ctx.uris.coop("bench")))).scalar_one()

        step("RSA sign rate on core 0")
        sign_before = rsa_rate("sign", core=0)

        step("worker")
        cmd = [T3R1, "worker"]
        if args.cprofile:
            cmd = [PYTHON, "-m", "cProfile", "-o", args.cprofile, T3R1, "worker"]
        worker = Child.start("worker", pinned(0, cmd), env=env,
                             log=tmp / "worker.log")
        children.append(worker)
        worker.expect("t3r1-fed worker running", 60)
        spy: Child | None = None
        if args.profile:
            fmt = "speedscope" if args.profile.endswith(".json") else "flamegraph"
            spy = Child.start("py-spy", pinned(1, [
                str(VENV_BIN / "py-spy"), "record", "-p", str(worker.proc.pid), "-o",
                args.profile, "-f", fmt, "-r", "200", "--nonblocking"]), log=tmp / "py-spy.log")
            await asyncio.sleep(1.0)

        results: list[dict[str, Any]] = []
        sink_before = conns_before = 0
        ok = True
        for variant in variants:
            shared = variant == "shared"
            if variant != variants[0]:
                await set_shared(ctx, port, shared)
            posts = args.posts_shared if shared else args.posts_personal
            per_activity = HOSTS if shared else FOLLOWERS
            expected = posts * 2 * per_activity
            step(f"timed: {variant} inboxes, {posts} posts → {expected} deliveries")
            watermark = await max_delivery_id(ctx)
            load_before = os.getloadavg()[0]
            cpu0, main0 = worker.cpu_seconds(), worker.main_thread_cpu()
            t0 = datetime.now(UTC)
            w0 = time.perf_counter()
            for i in range(posts):
                async with ctx.sessions() as s, s.begin():
                    await local_post(ctx, s, "alice", "bench",
                                     f"Assemblée générale jeudi 18 h, salle {i}. Venez !")
            publish_s = time.perf_counter() - w0
            counts: dict[str, int] = {}
            first: datetime | None = None
            last: datetime | None = None
            deadline = time.monotonic() + 100
            while time.monotonic() < deadline:
                counts, first, last = await delivery_state(ctx, watermark)
                if sum(counts.values()) >= expected and counts.get("pending", 0) == 0:
                    break
                await asyncio.sleep(0.1)
            cpu1, main1 = worker.cpu_seconds(), worker.main_thread_cpu()
            done = counts.get("done", 0)
            secs = (last - t0).total_seconds() if last else float("nan")
            rate = done / secs if last else 0.0
            span = (last - first).total_seconds() if last and first else 0.0
            sustained = (done - 1) / span if span > 0 else 0.0
            rep = sink_report(sink)
            received = rep["total"] - sink_before
            sink_before = rep["total"]
            conns = rep["connections"] - conns_before
            conns_before = rep["connections"]
            good = done == expected and received == expected
            ok = ok and good
            results.append({
                "variant": variant, "posts": posts, "activities": posts * 2,
                "deliveries": expected, "done": done, "states": counts,
                "sink_received": received, "tcp_connections": conns, "seconds": round(secs, 3),
                "publish_seconds": round(publish_s, 3),
                "deliveries_per_s": round(rate, 1),
                "sustained_per_s": round(sustained, 1),
                "worker_cpu_us_per_delivery": round((cpu1 - cpu0) / max(done, 1) * 1e6),
                "worker_main_thread_share": round((main1 - main0) / max(cpu1 - cpu0, 1e-9), 2),
                "loadavg_1min_before": round(load_before, 2), "ok": good,
            })
        if spy is not None:
            spy.proc.send_signal(signal.SIGINT)
            spy.proc.wait(60)
        rep = sink_report(sink)
        sig_ok, sig_n = check_samples(rep["samples"], coop_pem or "")
        ok = ok and sig_ok == sig_n > 0
        step("shutdown; RSA sign rate on core 0 again")
        worker_rss = worker.stop()
        sign_after = rsa_rate("sign", core=0)
    finally:
        await ctx.close()
    sign = RsaRate.mean(sign_before, sign_after)
    sign_cpu_us = 1e6 / sign.cpu
    for r in results:
        r["ratio_to_sign"] = round(r["deliveries_per_s"] / sign.wall, 3)
        r["cpu_ratio"] = round(sign_cpu_us / max(r["worker_cpu_us_per_delivery"], 1), 3)

    print(f"fan-out benchmark — {args.db}, {FOLLOWERS} followers of one cooperative on "
          f"{HOSTS} hosts; 2 Announces per post")
    print(f"machine: {facts['nproc']} cores, {facts['cpu']}, Python {facts['python']}")
    print(f"  RSA-2048 sign/s, one core   : {sign.wall:8.0f}   (before {sign_before.wall:.0f}, "
          f"after {sign_after.wall:.0f}; {sign_cpu_us:.0f} µs of CPU per signature)")
    for r in results:
        print(f"  {r['variant']:8} inboxes: {r['posts']} posts → {r['activities']} activities → "
              f"{r['deliveries']} deliveries in {r['seconds']:.2f} s "
              f"(publish {r['publish_seconds']:.2f} s)")
        print(f"      deliveries/s            : {r['deliveries_per_s']:8.0f}   (publish → last "
              f"done; first → last done: {r['sustained_per_s']:.0f}/s)")
        print(f"      ratio deliveries / sign : {r['ratio_to_sign']:8.3f}   (goal ≥ {GOAL}) "
              f"{'met' if r['ratio_to_sign'] >= GOAL else 'NOT met'}")
        print(f"      CPU-time ratio          : {r['cpu_ratio']:8.3f}   (signature CPU ÷ worker "
              f"CPU per delivery {r['worker_cpu_us_per_delivery']} µs; main thread "
              f"{r['worker_main_thread_share'] * 100:.0f}%)")
        print(f"      states {r['states']}; sink counted {r['sink_received']} requests on "
              f"{r['tcp_connections']} new connections; "
              f"load average before {r['loadavg_1min_before']}")
    print(f"  peak memory (worker maxrss) : {mib(worker_rss)}")
    print(f"  signatures checked at sink  : {sig_ok}/{sig_n} valid")
    print(f"  wall time {time.monotonic() - t_start:.1f} s; {'OK' if ok else 'FAILED'}")
    if args.json:
        print(json.dumps({"bench": "fanout", "db": args.db, "sign_per_s": round(sign.wall, 1),
                          "sign_per_cpu_s": round(sign.cpu, 1),
                          "variants": results, "worker_maxrss_kb": worker_rss,
                          "signatures_valid": f"{sig_ok}/{sig_n}", "ok": ok, **facts}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
