"""Inbox acceptance benchmark: signed activities per second answered 202 by one instance.

    .venv/bin/python bench/inbox.py [--db sqlite|postgresql] [--n N] [--concurrency C]
                                    [--kind create|like] [--profile out.svg|out.json]

Setup (not timed): a scratch database (SQLite file, or a PostgreSQL database created and
dropped on postgresql://postgres@127.0.0.1:5432), `t3r1 init`, a member and a cooperative;
`t3r1 serve` on 127.0.0.2 pinned to core 0 with the in-process worker disabled
(T3R1_INLINE_WORKER=0: we measure acceptance, not processing); a peer server on 127.0.0.5
serving 50 remote actors with their own RSA-2048 keys. Warm-up: one signed request per actor,
so the server fetches and caches every actor's key once; those rows are then deleted.

Timed: a load generator pinned to core 1 signs N distinct activities (draft-cavage, fresh
Date, not timed), then POSTs them to the cooperative's inbox over C keep-alive connections.
Printed: accepted/s; the one-core RSA-2048 PKCS1v15-SHA256 verify rate measured in this run
on core 0; their ratio; the ratio to the 3,000/s goal; the server's peak RSS. Every response
must be 202 and `inbox_items` must hold exactly N rows, or the run fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

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
    cached_keys,
    db_scalar,
    free_port,
    machine_facts,
    mib,
    pinned,
    rsa_rate,
    t3r1,
)

GOAL = 3000.0
SERVER_IP = "127.0.0.2"
PEER_IP = "127.0.0.5"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    p.add_argument("--n", type=int, default=8000, help="activities in the timed phase")
    p.add_argument("--concurrency", type=int, default=128, help="keep-alive connections")
    p.add_argument("--actors", type=int, default=50, help="remote actors (distinct keys)")
    p.add_argument("--kind", choices=["create", "like"], default="create")
    p.add_argument("--profile", default=None,
                   help="py-spy record the server during the timed phase (.svg or .json)")
    p.add_argument("--json", action="store_true", help="also print the result as JSON")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = p.parse_args()

    t_start = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="t3r1-bench-inbox-"))
    db = ScratchDb(args.db, tmp)
    children: list[Child] = []
    try:
        return run(args, tmp, db, children, t_start)
    finally:
        for c in children:
            c.stop()
        asyncio.run(db.drop())
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}")


def run(args: argparse.Namespace, tmp: Path, db: ScratchDb, children: list[Child],
        t_start: float) -> int:
    def step(what: str) -> None:
        print(f"[{time.monotonic() - t_start:6.1f} s] {what}", file=sys.stderr, flush=True)

    facts = machine_facts()
    step(f"load average {os.getloadavg()[0]:.2f}; generating {args.actors} actor keys")
    keys_file = tmp / "keys.json"
    keys_file.write_text(json.dumps(cached_keys(args.actors)))
    step("database, t3r1 init, member and cooperative")
    url = asyncio.run(db.create())
    port = free_port(SERVER_IP)
    data = tmp / "data"
    env = base_env(data, url, T3R1_INLINE_WORKER="0")
    t3r1(env, "init", "--domain", f"{SERVER_IP}:{port}", "--scheme", "http")
    t3r1(env, "admin", "create-user", "alice", "--password", "bench-password")
    t3r1(env, "admin", "create-coop", "bench", "--owner", "alice")
    base = f"http://{SERVER_IP}:{port}"
    coop = f"{base}/c/bench"
    target = f"{coop}/inbox"

    step("peer and server")
    peer = Child.start("peer", pinned(1, [PYTHON, str(BENCH / "_peer.py"), PEER_IP,
                                          str(keys_file), str(args.actors)]),
                       log=tmp / "peer.log")
    children.append(peer)
    peer_base = json.loads(peer.readline(30))["base"]

    server = Child.start("server", pinned(0, [T3R1, "serve", "--host", SERVER_IP,
                                              "--port", str(port)]),
                         env=env, log=tmp / "server.log")
    children.append(server)
    server.expect("t3r1-fed", 30)

    step("warm-up: one signed request per remote actor, then pre-signing on core 1")
    load = Child.start("loadgen", pinned(1, [
        PYTHON, str(BENCH / "_loadgen.py"), "--keys", str(keys_file), "--peer", peer_base,
        "--target", target, "--coop", coop, "--actors", str(args.actors), "--kind", args.kind,
        "--n", str(args.n), "--concurrency", str(args.concurrency)]),
        log=tmp / "loadgen.log", stdin=True)
    children.append(load)
    w = json.loads(load.expect('{"phase": "warm"', 120))
    if w["statuses"] != {"202": args.actors}:
        print(f"warm-up failed: {w}{server._tail()}", file=sys.stderr)
        return 1
    actors_stored = asyncio.run(db_scalar(url, "SELECT count(*) FROM actors WHERE NOT local"))
    asyncio.run(db_scalar(url, "DELETE FROM inbox_items"))
    step("RSA verify rate on core 0 (while core 1 pre-signs)")
    verify_before = rsa_rate("verify", core=0)
    signed = json.loads(load.expect('{"phase": "signed"', 300))

    step("timed phase")
    spy: Child | None = None
    if args.profile:
        fmt = "speedscope" if args.profile.endswith(".json") else "flamegraph"
        spy = Child.start("py-spy", pinned(1, [str(VENV_BIN / "py-spy"), "record", "-p",
                                               str(server.proc.pid), "-o", args.profile,
                                               "-f", fmt, "-r", "200", "--nonblocking"]),
                          log=tmp / "py-spy.log")
        time.sleep(1.0)
    load_before = os.getloadavg()[0]
    cpu0, w0, main0 = server.cpu_seconds(), time.perf_counter(), server.main_thread_cpu()
    assert load.proc.stdin is not None
    load.proc.stdin.write("go\n")
    load.proc.stdin.flush()
    done = json.loads(load.expect('{"phase": "done"', 300))
    cpu1, w1, main1 = server.cpu_seconds(), time.perf_counter(), server.main_thread_cpu()
    if spy is not None:
        spy.proc.send_signal(signal.SIGINT)
        spy.proc.wait(60)
    load.stop()
    step("checks and shutdown")
    rows = asyncio.run(db_scalar(url, "SELECT count(*) FROM inbox_items"))
    server_rss = server.stop()
    peer.stop()
    verify_after = rsa_rate("verify", core=0)
    verify = RsaRate.mean(verify_before, verify_after)
    verify_rate = verify.wall

    n, secs = done["n"], done["seconds"]
    accepted = done["statuses"].get("202", 0)
    rate = accepted / secs
    ok = accepted == n and rows == n
    res = {
        "bench": "inbox", "db": args.db, "n": n, "concurrency": args.concurrency,
        "kind": args.kind, "actors": args.actors, "actors_stored": actors_stored,
        "accepted_per_s": round(rate, 1), "verify_per_s": round(verify_rate, 1),
        "ratio_to_verify": round(rate / verify_rate, 4), "ratio_to_goal": round(rate / GOAL, 3),
        "verify_per_cpu_s": round(verify.cpu, 1),
        "cpu_ratio_to_verify": round(1e6 / max((cpu1 - cpu0) / n * 1e6, 1) / verify.cpu, 4),
        "seconds": round(secs, 3), "statuses": done["statuses"], "inbox_rows": rows,
        "server_cpu_share": round((cpu1 - cpu0) / (w1 - w0), 2),
        "server_cpu_us_per_activity": round((cpu1 - cpu0) / n * 1e6),
        "server_main_thread_share": round((main1 - main0) / max(cpu1 - cpu0, 1e-9), 2),
        "loadavg_1min_before": round(load_before, 2),
        "loadgen_cpu_share": round(done["loadgen_cpu_seconds"] / secs, 2),
        "server_maxrss_kb": server_rss, "avg_request_bytes": round(signed["avg_request_bytes"]),
        "presign_seconds": round(signed["sign_seconds"], 1), "ok": ok, **facts,
        "wall_seconds": round(time.monotonic() - t_start, 1),
    }
    print(f"inbox benchmark — {args.db}, {n} signed {args.kind.title()} activities from "
          f"{args.actors} remote actors (~{res['avg_request_bytes']} B requests), "
          f"{args.concurrency} keep-alive connections")
    print(f"machine: {facts['nproc']} cores, {facts['cpu']}, Python {facts['python']}")
    print(f"  accepted (202) per second   : {rate:8.0f}   ({accepted}/{n} in {secs:.2f} s)")
    print(f"  RSA-2048 verify/s, one core : {verify_rate:8.0f}   (before {verify_before.wall:.0f}, "
          f"after {verify_after.wall:.0f}; {1e6 / verify.cpu:.0f} µs of CPU per verification)")
    print(f"  ratio accepted / verify     : {rate / verify_rate:8.3f}")
    print(f"  ratio to goal ({GOAL:.0f}/s)     : {rate / GOAL:8.3f}")
    print(f"  server CPU during load      : {res['server_cpu_share'] * 100:.0f}% of its core; "
          f"load generator {res['loadgen_cpu_share'] * 100:.0f}% of its core")
    print(f"  server CPU per activity     : {res['server_cpu_us_per_activity']} µs "
          f"(→ {1e6 / max(res['server_cpu_us_per_activity'], 1):.0f}/s if it had its core alone; "
          f"main thread {res['server_main_thread_share'] * 100:.0f}% of it)")
    print(f"  CPU-time ratio to verify    : {res['cpu_ratio_to_verify']:8.3f}   (accepted per "
          f"server CPU-second ÷ verifications per CPU-second)")
    print(f"  peak memory (server maxrss) : {mib(server_rss)}")
    print(f"  machine load average before : {load_before:.2f} (other processes share the cores)")
    print(f"  inbox_items rows            : {rows} (expected {n}); statuses {done['statuses']}"
          f"{'' if not done['errors'] else ' errors: ' + str(done['errors'][:3])}")
    if args.profile:
        print(f"  profile                     : {args.profile}")
    print(f"  wall time {res['wall_seconds']} s; {'OK' if ok else 'FAILED'}")
    if args.json:
        print(json.dumps(res))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
