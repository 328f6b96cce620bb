"""A remote server for bench/inbox.py: serves the peer actors' documents (and keys).

Run as `python bench/_peer.py IP KEYS_JSON COUNT`; prints `{"base": ...}` once listening and
serves until SIGTERM. It is the tests' peer (tests/peer.py), with pre-made keys.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))  # for tests/, after PYTHONPATH

from tests.peer import Peer, PeerActor


async def main(ip: str, keys: list[list[str]], count: int) -> None:
    peer = Peer(ip)
    for i in range(count):
        priv, pub = keys[i % len(keys)]
        peer.actors[f"a{i}"] = PeerActor(peer, f"a{i}", priv, pub)
    await peer.start()
    print(json.dumps({"base": peer.base}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await peer.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], json.loads(Path(sys.argv[2]).read_text()), int(sys.argv[3])))
