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
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    BENCH,
    PYTHON,
    T3R1,
    VENV_BIN,
    Child,
    ScratchDb,
    base_env,
    db_scalar,
    free_port,
    gen_keys,
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
    p.add_argument("--n", type=int, default=10000, help="activities in the timed phase")
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
    keys_file.write_text(json.dumps(gen_keys(args.actors)))
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

    gen = [PYTHON, str(BENCH / "_loadgen.py")]
    common = ["--keys", str(keys_file), "--peer", peer_base, "--target", target, "--coop", coop,
              "--actors", str(args.actors), "--kind", args.kind]
    step("warm-up: one signed request per remote actor")
    warm = Child.start("warm", pinned(1, [*gen, "warm", *common]), log=tmp / "warm.log")
    children.append(warm)
    w = json.loads(warm.expect('{"phase": "warm"', 120))
    warm.stop()
    if w["statuses"] != {"202": args.actors}:
        print(f"warm-up failed: {w}\n{server._tail()}", file=sys.stderr)
        return 1
    actors_stored = asyncio.run(db_scalar(url, "SELECT count(*) FROM actors WHERE NOT local"))
    asyncio.run(db_scalar(url, "DELETE FROM inbox_items"))

    step("RSA verify rate on core 0")
    verify_rate = rsa_rate("verify", core=0)
    step(f"pre-signing {args.n} activities on core 1")

    load = Child.start("loadgen", pinned(1, [*gen, "load", *common, "--n", str(args.n),
                                             "--concurrency", str(args.concurrency)]),
                       log=tmp / "loadgen.log")
    children.append(load)
    start = json.loads(load.expect('{"phase": "start"', 300))
    step("timed phase")
    cpu0, w0 = server.cpu_seconds(), time.perf_counter()
    spy: Child | None = None
    if args.profile:
        fmt = "speedscope" if args.profile.endswith(".json") else "flamegraph"
        spy = Child.start("py-spy", pinned(1, [str(VENV_BIN / "py-spy"), "record", "-p",
                                               str(server.proc.pid), "-o", args.profile,
                                               "-f", fmt, "-r", "200", "--nonblocking"]),
                          log=tmp / "py-spy.log")
    done = json.loads(load.expect('{"phase": "done"', 300))
    cpu1, w1 = server.cpu_seconds(), time.perf_counter()
    if spy is not None:
        import signal

        spy.proc.send_signal(signal.SIGINT)
        spy.proc.wait(30)
        spy.proc.returncode = spy.proc.returncode
    load.stop()
    step("checks and shutdown")
    rows = asyncio.run(db_scalar(url, "SELECT count(*) FROM inbox_items"))
    server_rss = server.stop()
    peer.stop()

    n, secs = done["n"], done["seconds"]
    accepted = done["statuses"].get("202", 0)
    rate = accepted / secs
    ok = accepted == n and rows == n
    res = {
        "bench": "inbox", "db": args.db, "n": n, "concurrency": args.concurrency,
        "kind": args.kind, "actors": args.actors, "actors_stored": actors_stored,
        "accepted_per_s": round(rate, 1), "verify_per_s": round(verify_rate, 1),
        "ratio_to_verify": round(rate / verify_rate, 4), "ratio_to_goal": round(rate / GOAL, 3),
        "seconds": round(secs, 3), "statuses": done["statuses"], "inbox_rows": rows,
        "server_cpu_share": round((cpu1 - cpu0) / (w1 - w0), 2),
        "loadgen_cpu_share": round(done["loadgen_cpu_seconds"] / secs, 2),
        "server_maxrss_kb": server_rss, "avg_request_bytes": round(start["avg_request_bytes"]),
        "presign_seconds": round(start["sign_seconds"], 1), "ok": ok, **facts,
        "wall_seconds": round(time.monotonic() - t_start, 1),
    }
    print(f"inbox benchmark — {args.db}, {n} signed {args.kind.title()} activities from "
          f"{args.actors} remote actors (~{res['avg_request_bytes']} B requests), "
          f"{args.concurrency} keep-alive connections")
    print(f"machine: {facts['nproc']} cores, {facts['cpu']}, Python {facts['python']}")
    print(f"  accepted (202) per second   : {rate:8.0f}   ({accepted}/{n} in {secs:.2f} s)")
    print(f"  RSA-2048 verify/s, one core : {verify_rate:8.0f}")
    print(f"  ratio accepted / verify     : {rate / verify_rate:8.3f}")
    print(f"  ratio to goal ({GOAL:.0f}/s)     : {rate / GOAL:8.3f}")
    print(f"  server CPU during load      : {res['server_cpu_share'] * 100:.0f}% of its core; "
          f"load generator {res['loadgen_cpu_share'] * 100:.0f}% of its core")
    print(f"  peak memory (server maxrss) : {mib(server_rss)}")
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
