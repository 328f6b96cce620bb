"""Load generator for bench/inbox.py (run pinned to its own core).

    python bench/_loadgen.py --keys F --peer BASE --target URL --coop URI
                             [--actors 50] [--n N] [--concurrency C] [--kind create|like]

Every request is a distinct activity by one of the peer actors, signed with draft-cavage
`rsa-sha256` over `(request-target) host date digest content-type` exactly as Mastodon
signs (t3r1_fed.federation.httpsig.sign_headers, the code our own delivery uses), with a
Date taken at signing time. It first sends one request per actor (warm-up: the server
fetches each actor's key once) and prints `{"phase": "warm", ...}`; then signs the N timed
requests (not timed) and prints `{"phase": "signed", ...}`; on a line `go` on stdin it sends
them over C keep-alive HTTP/1.1 connections, one request in flight per connection, through a
minimal asyncio protocol (far cheaper per request than an HTTP client library, so the
generator is not the bottleneck), and prints `{"phase": "done", ...}`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

sys.path.append(str(Path(__file__).resolve().parents[1]))  # for tests/, after PYTHONPATH

import orjson

from t3r1_fed.federation.httpsig import sign_headers
from t3r1_fed.federation.keys import load_private_key

AS_PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
CONTEXT = ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"]
TEXT = ("Assemblée générale jeudi à 18 h, salle 3 : ordre du jour, budget de la caisse de "
        "grève, mandat pour la négociation annuelle. Venez nombreuses et nombreux ! ")


def activity(kind: str, peer: str, actor: str, coop: str, i: int) -> dict[str, object]:
    aid = f"{peer}/activities/{uuid.uuid4().hex}"
    if kind == "like":
        return {"@context": CONTEXT, "id": aid, "type": "Like", "actor": actor,
                "object": f"{coop}/posts/{i}", "to": [coop]}
    oid = f"{peer}/objects/{uuid.uuid4().hex}"
    name = coop.rsplit("/", 1)[1]
    note = {
        "id": oid, "type": "Note", "attributedTo": actor,
        "content": f'<p><span class="h-card"><a href="{coop}" class="u-url mention">@<span>'
                   f"{name}</span></a></span> {TEXT}#{i}</p>",
        "to": [AS_PUBLIC], "cc": [f"{actor}/followers", coop], "audience": coop,
        "published": "2026-11-28T12:00:00Z", "url": oid, "sensitive": False,
        "tag": [{"type": "Mention", "href": coop, "name": f"@{name}"}],
    }
    return {"@context": CONTEXT, "id": aid, "type": "Create", "actor": actor, "object": note,
            "to": [AS_PUBLIC], "cc": [f"{actor}/followers", coop],
            "published": "2026-11-28T12:00:00Z"}


def build_requests(args: argparse.Namespace, count: int) -> list[bytes]:
    keys = json.loads(Path(args.keys).read_text())
    target = urlsplit(args.target)
    path = target.path
    privs = [load_private_key(keys[i % len(keys)][0]) for i in range(args.actors)]
    out: list[bytes] = []
    for i in range(count):
        a = i % args.actors
        actor = f"{args.peer}/users/a{a}"
        body = orjson.dumps(activity(args.kind, args.peer, actor, args.coop, i))
        h = sign_headers("POST", args.target, key_id=f"{actor}#main-key",
                         private_key=privs[a], body=body)
        head = [f"POST {path} HTTP/1.1"]
        head += [f"{k}: {v}" for k, v in h.items()]
        head += [f"Content-Length: {len(body)}", "User-Agent: t3r1-bench/1", "", ""]
        out.append("\r\n".join(head).encode() + body)
    return out


class Conn(asyncio.Protocol):
    """One keep-alive connection: send a request, read its response, send the next."""

    def __init__(self, source: Iterator[bytes], stats: Counter[int], errors: list[str],
                 done: asyncio.Future[None], remaining: list[int]) -> None:
        self.source, self.stats, self.errors = source, stats, errors
        self.done, self.remaining = done, remaining
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.ready.set_result(None)

    def send_next(self) -> None:
        req = next(self.source, None)
        if req is None:
            assert self.transport is not None
            self.transport.close()
            return
        assert self.transport is not None
        self.transport.write(req)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).lower()
            status = int(head[9:12])
            cl = 0
            pos = head.find(b"\r\ncontent-length:")
            if pos >= 0:
                eol = head.find(b"\r\n", pos + 2)
                cl = int(head[pos + 17:eol if eol >= 0 else len(head)])
            total = end + 4 + cl
            if len(self.buf) < total:
                return
            if status != 202 and len(self.errors) < 5:
                self.errors.append(f"{status} {bytes(self.buf[end + 4:total])[:300]!r}")
            del self.buf[:total]
            self.stats[status] += 1
            self.remaining[0] -= 1
            if self.remaining[0] == 0 and not self.done.done():
                self.done.set_result(None)
            self.send_next()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.remaining[0] > 0 and not self.done.done() and exc is not None:
            self.done.set_exception(exc)


async def blast(args: argparse.Namespace, reqs: list[bytes], concurrency: int
                ) -> tuple[float, Counter[int], list[str]]:
    loop = asyncio.get_running_loop()
    target = urlsplit(args.target)
    stats: Counter[int] = Counter()
    errors: list[str] = []
    done: asyncio.Future[None] = loop.create_future()
    remaining = [len(reqs)]
    source = iter(reqs)
    conns: list[Conn] = []
    for _ in range(min(concurrency, len(reqs))):
        _, proto = await loop.create_connection(
            lambda: Conn(source, stats, errors, done, remaining), target.hostname, target.port)
        conns.append(proto)
    await asyncio.gather(*(c.ready for c in conns))
    t0 = time.perf_counter()
    for c in conns:
        c.send_next()
    await asyncio.wait_for(done, timeout=300)
    elapsed = time.perf_counter() - t0
    for c in conns:
        if c.transport is not None:
            c.transport.close()
    return elapsed, stats, errors


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--keys", required=True)
    p.add_argument("--peer", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--coop", required=True)
    p.add_argument("--actors", type=int, default=50)
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--concurrency", type=int, default=128)
    p.add_argument("--kind", choices=["create", "like"], default="create")
    args = p.parse_args()
    # 1. Warm-up: one signed request per actor; the server fetches each actor (and key) once.
    reqs = build_requests(args, args.actors)
    elapsed, stats, errors = asyncio.run(blast(args, reqs, 8))
    print(json.dumps({"phase": "warm", "n": len(reqs), "statuses": dict(stats),
                      "errors": errors, "seconds": elapsed}), flush=True)
    # 2. Pre-sign the timed requests (fresh Dates), then wait for "go" on stdin.
    t = time.perf_counter()
    reqs = build_requests(args, args.n)
    sign_s = time.perf_counter() - t
    size = sum(len(r) for r in reqs) / len(reqs)
    print(json.dumps({"phase": "signed", "sign_seconds": sign_s, "avg_request_bytes": size}),
          flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    # 3. Timed phase.
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    elapsed, stats, errors = asyncio.run(blast(args, reqs, args.concurrency))
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    print(json.dumps({"phase": "done", "n": len(reqs), "seconds": elapsed,
                      "statuses": {str(k): v for k, v in stats.items()}, "errors": errors,
                      "loadgen_cpu_seconds": cpu}), flush=True)


if __name__ == "__main__":
    main()
