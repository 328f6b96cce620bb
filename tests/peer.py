"""A minimal remote ActivityPub server for tests: actors with keys, an inbox that records.

It is a peer, not a mock of our protocol: it serves real actor documents over real HTTP on
its own loopback address, signs what it sends with draft-cavage like Mastodon, and can be
told to fail (down, 500, 429 + Retry-After) to exercise our delivery policy.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import ClientSession, web

from t3r1_fed.federation.httpsig import sign_headers
from t3r1_fed.federation.keys import generate_rsa_keypair, load_private_key
from tests.testrig import free_socket

AS2 = "application/activity+json"
CONTEXT = ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"]

_KEYS: list[tuple[str, str]] = []


def test_keypair(index: int = 0) -> tuple[str, str]:
    """RSA keys are slow to make: reuse a few across the whole test run."""
    while len(_KEYS) <= index:
        _KEYS.append(generate_rsa_keypair())
    return _KEYS[index]


@dataclass
class PeerActor:
    peer: Peer
    name: str
    private_pem: str
    public_pem: str
    type: str = "Person"

    @property
    def id(self) -> str:
        return f"{self.peer.base}/users/{self.name}"

    @property
    def key_id(self) -> str:
        return f"{self.id}#main-key"

    @property
    def inbox(self) -> str:
        return f"{self.id}/inbox"

    def document(self) -> dict[str, Any]:
        return {
            "@context": CONTEXT, "id": self.id, "type": self.type,
            "preferredUsername": self.name, "name": self.name.title(),
            "inbox": self.inbox, "outbox": f"{self.id}/outbox",
            "followers": f"{self.id}/followers", "following": f"{self.id}/following",
            "endpoints": {"sharedInbox": f"{self.peer.base}/inbox"},
            "publicKey": {"id": self.key_id, "owner": self.id, "publicKeyPem": self.public_pem},
        }

    def signed(self, method: str, url: str, body: bytes | None = None) -> dict[str, str]:
        return dict(sign_headers(method, url, key_id=self.key_id,
                                 private_key=load_private_key(self.private_pem), body=body))

    async def post(self, url: str, activity: dict[str, Any], *,
                   headers: dict[str, str] | None = None) -> tuple[int, Any]:
        body = orjson.dumps(activity)
        h = self.signed("POST", url, body)
        h.update(headers or {})
        async with ClientSession() as s, s.post(url, data=body, headers=h) as resp:
            text = await resp.read()
            return resp.status, (orjson.loads(text) if text else None)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Peer:
    ip: str
    port: int = 0
    actors: dict[str, PeerActor] = field(default_factory=dict)
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    # Failure modes: None (answer 202), "down" (connection refused), an int status, or
    # (status, retry_after_seconds).
    mode: Any = None
    _runner: web.AppRunner | None = None
    _sock: socket.socket | None = None

    @property
    def base(self) -> str:
        return f"http://{self.ip}:{self.port}"

    @property
    def domain(self) -> str:
        return f"{self.ip}:{self.port}"

    def actor(self, name: str, key_index: int = 0, type_: str = "Person") -> PeerActor:
        priv, pub = test_keypair(key_index)
        a = PeerActor(self, name, priv, pub, type_)
        self.actors[name] = a
        return a

    def activities(self, type_: str | None = None) -> list[dict[str, Any]]:
        return [r.body for r in self.received if type_ is None or r.body.get("type") == type_]

    async def start(self) -> Peer:
        app = web.Application()
        app.router.add_get("/users/{name}", self._actor)
        app.router.add_post("/users/{name}/inbox", self._inbox)
        app.router.add_post("/inbox", self._inbox)
        app.router.add_get("/objects/{oid}", self._object)
        app.router.add_get("/.well-known/webfinger", self._webfinger)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        if self._sock is None:
            self._sock = free_socket(self.ip)
            self.port = self._sock.getsockname()[1]
        await web.SockSite(self._runner, self._sock).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._sock = None  # the socket is closed with the site

    async def restart(self) -> None:
        """Come back on the same port after `stop()` (a peer that was down recovers)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.ip, self.port))
        sock.listen(128)
        sock.setblocking(False)
        self._sock = sock
        await self.start()

    async def _actor(self, request: web.Request) -> web.Response:
        a = self.actors.get(request.match_info["name"])
        if a is None:
            return web.Response(status=404)
        return web.Response(body=orjson.dumps(a.document()), content_type=AS2)

    async def _object(self, request: web.Request) -> web.Response:
        obj = self.objects.get(f"{self.base}/objects/{request.match_info['oid']}")
        if obj is None:
            return web.Response(status=404)
        return web.Response(body=orjson.dumps(obj), content_type=AS2)

    async def _webfinger(self, request: web.Request) -> web.Response:
        res = request.query.get("resource", "")
        name = res.removeprefix("acct:").split("@")[0]
        a = self.actors.get(name)
        if a is None:
            return web.Response(status=404)
        jrd = {"subject": res, "links": [{"rel": "self", "type": AS2, "href": a.id}]}
        return web.Response(body=orjson.dumps(jrd), content_type="application/jrd+json")

    async def _inbox(self, request: web.Request) -> web.Response:
        mode = self.mode
        if isinstance(mode, int):
            return web.Response(status=mode)
        if isinstance(mode, tuple):
            return web.Response(status=mode[0], headers={"Retry-After": str(mode[1])})
        body = orjson.loads(await request.read())
        self.received.append(Received(request.path, dict(request.headers), body))
        return web.Response(status=202)

    def note(self, actor: PeerActor, text: str, *, to: list[str], cc: list[str] | None = None,
             tag: list[dict[str, Any]] | None = None, in_reply_to: str | None = None,
             oid: str | None = None) -> dict[str, Any]:
        oid = oid or f"n{len(self.objects) + 1}"
        uri = f"{self.base}/objects/{oid}"
        note: dict[str, Any] = {
            "@context": CONTEXT, "id": uri, "type": "Note", "attributedTo": actor.id,
            "content": f"<p>{text}</p>", "to": to, "cc": cc or [],
            "published": "2026-11-28T12:00:00Z", "tag": tag or [], "inReplyTo": in_reply_to,
        }
        self.objects[uri] = note
        return note


async def wait_received(peer: Peer, count: int, type_: str | None = None,
                        timeout: float = 15.0) -> list[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        got = peer.activities(type_)
        if len(got) >= count:
            return got
        await asyncio.sleep(0.05)
    raise AssertionError(f"peer got {len(peer.activities(type_))} {type_ or ''} activities, "
                         f"expected {count}")
