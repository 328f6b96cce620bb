"""Delivery sink for bench/fanout.py: many loopback "hosts" in one process, answering 202.

    python bench/_sink.py PREFIX COUNT     e.g. 127.0.1 100 → 127.0.1.1 … 127.0.1.100

Listens on the same port on every address (prints `{"port": P}`), reads each HTTP/1.1
request (headers and Content-Length body, keep-alive), answers `202 Accepted` at once and
counts requests per host. Keeps the first request of a few hosts so the orchestrator can
check real signatures. On SIGUSR1 prints `{"total": N, "per_host": {...}, "samples": [...]}`.
A bare asyncio protocol, so the sink costs far less CPU than the sender it measures.
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import socket
import sys
from collections import Counter

RESPONSE = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"
MAX_SAMPLES = 3


class Sink(asyncio.Protocol):
    def __init__(self, host: str, counts: Counter[str], samples: list[dict[str, str]]) -> None:
        self.host, self.counts, self.samples = host, counts, samples
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.counts["connections"] += 1

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end])
            low = head.lower()
            cl = 0
            pos = low.find(b"\r\ncontent-length:")
            if pos >= 0:
                eol = low.find(b"\r\n", pos + 2)
                cl = int(low[pos + 17:eol if eol >= 0 else len(low)])
            total = end + 4 + cl
            if len(self.buf) < total:
                return
            if self.counts[self.host] == 0 and len(self.samples) < MAX_SAMPLES:
                self.samples.append({
                    "host": self.host, "head": head.decode("latin-1"),
                    "body": base64.b64encode(bytes(self.buf[end + 4:total])).decode(),
                })
            del self.buf[:total]
            self.counts[self.host] += 1
            assert self.transport is not None
            self.transport.write(RESPONSE)


async def main(prefix: str, count: int) -> None:
    loop = asyncio.get_running_loop()
    counts: Counter[str] = Counter()
    samples: list[dict[str, str]] = []
    ips = [f"{prefix}.{i}" for i in range(1, count + 1)]
    for _attempt in range(20):
        probe = socket.socket()
        probe.bind((ips[0], 0))
        port = probe.getsockname()[1]
        probe.close()
        servers = []
        try:
            for ip in ips:
                host = f"{ip}:{port}"
                servers.append(await loop.create_server(
                    lambda host=host: Sink(host, counts, samples), ip, port, backlog=512,
                    reuse_address=True))
            break
        except OSError:
            for s in servers:
                s.close()
    else:
        sys.exit("no port free on every address")
    print(json.dumps({"port": port}), flush=True)
    stop = asyncio.Event()

    def report() -> None:
        per_host = {k: v for k, v in counts.items() if k != "connections"}
        print(json.dumps({"total": sum(per_host.values()), "connections": counts["connections"],
                          "per_host": per_host, "samples": samples}), flush=True)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, report)
    await stop.wait()
    for s in servers:
        s.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
