"""Hostile and broken input at the inbox, against a real instance and a real peer.

Every refusal must come with the right status, a JSON body `{"error": "..."}`, and leave
nothing behind: no inbox_items row, no object. Cheap refusals (size, JSON, signature
syntax, digest, clock) must not cost a key fetch either (INTEROP §3, §7).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession, web
from sqlalchemy import func, select, update

from t3r1_fed.db.models import Actor, InboxItem, Object
from t3r1_fed.federation.httpsig import sign_headers
from t3r1_fed.federation.keys import load_private_key
from t3r1_fed.vocab.context import AS_PUBLIC
from tests.conftest import StartInstance
from tests.peer import AS2, Peer, PeerActor
from tests.peer import test_keypair as keypair
from tests.testrig import Instance, free_socket

pytestmark = pytest.mark.federation

AS = "https://www.w3.org/ns/activitystreams"
ELSEWHERE = "http://victim.example"  # a host nobody in these tests controls


@pytest.fixture(autouse=True)
def _pooled_local_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """RSA-2048 generation costs about half a second: local actors (instance actor, alice)
    take keys from the test pool instead, never the peer's keys 0 and 1."""
    keypair(3)  # fill the pool here, not from the worker thread that creates actors
    n = itertools.count()
    monkeypatch.setattr("t3r1_fed.actors.local.generate_rsa_keypair",
                        lambda: keypair(2 + next(n) % 2))


# ---- a peer that counts what is fetched from it ---------------------------------------------


@dataclass
class CountingPeer(Peer):
    """tests.peer.Peer, recording every GET it answers (actor, object, WebFinger)."""

    hits: list[str] = field(default_factory=list)

    def fetches(self, name: str | None = None) -> int:
        path = f"/users/{name}" if name else None
        return sum(1 for h in self.hits if path is None or h == path)

    async def _actor(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        return await super()._actor(request)

    async def _object(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        return await super()._object(request)

    async def _webfinger(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        return await super()._webfinger(request)


@dataclass
class Env:
    inst: Instance
    peer: CountingPeer
    mona: PeerActor

    @property
    def inbox(self) -> str:
        return f"{self.inst.base}/inbox"


@pytest.fixture
async def env(instances: StartInstance) -> AsyncIterator[Env]:
    inst = await instances("127.0.0.2")
    await inst.create_user("alice")
    peer = await CountingPeer("127.0.0.5").start()
    try:
        yield Env(inst, peer, peer.actor("mona"))
    finally:
        await peer.stop()


# ---- helpers ----------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    content_type: str
    json: Any


async def send(url: str, body: bytes | Any, headers: dict[str, str]) -> Reply:
    async with ClientSession() as s, s.post(url, data=body, headers=headers) as resp:
        raw = await resp.read()
        try:
            doc = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            doc = raw
        return Reply(resp.status, resp.content_type, doc)


def assert_json_error(reply: Reply, status: int, fragment: str = "") -> None:
    assert reply.status == status, reply
    assert reply.content_type == "application/json", reply
    assert isinstance(reply.json, dict) and set(reply.json) == {"error"}, reply
    message = reply.json["error"]
    assert isinstance(message, str) and message, reply
    assert fragment.lower() in message.lower(), (fragment, message)


async def stored(inst: Instance) -> tuple[int, int]:
    """(inbox_items rows, objects rows)."""
    async with inst.session() as s:
        items = (await s.execute(select(func.count()).select_from(InboxItem))).scalar_one()
        objects = (await s.execute(select(func.count()).select_from(Object))).scalar_one()
    return items, objects


async def assert_nothing_stored(inst: Instance) -> None:
    assert await stored(inst) == (0, 0)


def signed(actor: PeerActor, url: str, body: bytes, *, private_pem: str | None = None,
           date: datetime | None = None) -> dict[str, str]:
    return dict(sign_headers("POST", url, key_id=actor.key_id, body=body, date=date,
                             private_key=load_private_key(private_pem or actor.private_pem)))


_seq = 0


def create_note(actor: PeerActor, *, activity_id: str | None = None,
                object_id: str | None = None, text: str = "Assemblée générale") -> dict[str, Any]:
    global _seq
    _seq += 1
    oid = object_id or f"{actor.peer.base}/objects/bad{_seq}"
    return {
        "@context": AS, "id": activity_id or f"{oid}/activity", "type": "Create",
        "actor": actor.id, "to": [AS_PUBLIC],
        "object": {"id": oid, "type": "Note", "attributedTo": actor.id,
                   "content": f"<p>{text}</p>", "to": [AS_PUBLIC]},
    }


# ---- the refusal table ------------------------------------------------------------------------

# A builder returns (url, body, headers) for the request to send.
Request = tuple[str, bytes, dict[str, str]]


def _unsigned(e: Env) -> Request:
    return e.inbox, orjson.dumps(create_note(e.mona)), {"Content-Type": AS2}


def _wrong_key(e: Env) -> Request:
    # mona's document lists key 0; the request names mona's key but is signed with key 1.
    body = orjson.dumps(create_note(e.mona))
    return e.inbox, body, signed(e.mona, e.inbox, body, private_pem=keypair(1)[0])


def _signer_not_actor(e: Env) -> Request:
    bob = e.peer.actor("bob")
    body = orjson.dumps(create_note(bob))  # bob's activity, signed by mona
    return e.inbox, body, signed(e.mona, e.inbox, body)


def _stale_date(e: Env) -> Request:
    body = orjson.dumps(create_note(e.mona))
    old = datetime.now(UTC) - timedelta(hours=2)
    return e.inbox, body, signed(e.mona, e.inbox, body, date=old)


def _digest_mismatch(e: Env) -> Request:
    act = create_note(e.mona, text="Grève reconductible")
    headers = signed(e.mona, e.inbox, orjson.dumps(act))
    act["object"]["content"] = "<p>Grève annulée</p>"  # altered in transit
    return e.inbox, orjson.dumps(act), headers


def _signed_raw(body: bytes) -> Callable[[Env], Request]:
    def build(e: Env) -> Request:
        return e.inbox, body, signed(e.mona, e.inbox, body)

    return build


def _signed_without(key: str) -> Callable[[Env], Request]:
    def build(e: Env) -> Request:
        act = create_note(e.mona)
        del act[key]
        body = orjson.dumps(act)
        return e.inbox, body, signed(e.mona, e.inbox, body)

    return build


def _signed_activity(
    make: Callable[[Env], dict[str, Any]], *, to_member: bool = False
) -> Callable[[Env], Request]:
    def build(e: Env) -> Request:
        body = orjson.dumps(make(e))
        url = f"{e.inst.base}/u/alice/inbox" if to_member else e.inbox
        return url, body, signed(e.mona, url, body)

    return build


@dataclass(frozen=True)
class Case:
    build: Callable[[Env], Request]
    status: int
    error: str  # a fragment of the error message
    key_fetches: int  # GETs of mona's actor document the request may cost


CASES: dict[str, Case] = {
    "unsigned": Case(_unsigned, 401, "signature", 0),
    "wrong-key": Case(_wrong_key, 401, "does not verify", 1),
    "signer-is-not-actor": Case(_signer_not_actor, 401, "signer is not", 1),
    "stale-date": Case(_stale_date, 401, "too old", 0),
    "digest-mismatch": Case(_digest_mismatch, 401, "does not match the body", 0),
    "malformed-json": Case(_signed_raw(b'{"id": "http://x/1", "type": '), 400, "JSON", 0),
    "json-array": Case(_signed_raw(b'[{"type": "Create"}]'), 400, "JSON object", 0),
    "json-string": Case(_signed_raw(b'"Create"'), 400, "JSON object", 0),
    "missing-id": Case(_signed_without("id"), 400, "id", 0),
    "missing-type": Case(_signed_without("type"), 400, "type", 0),
    "missing-actor": Case(_signed_without("actor"), 400, "actor", 0),
    "create-of-foreign-object": Case(_signed_activity(lambda e: create_note(
        e.mona, object_id=f"{ELSEWHERE}/objects/1",
        activity_id=f"{e.peer.base}/activities/c1")), 403, "object id", 1),
    "create-attributed-elsewhere": Case(_signed_activity(lambda e: {
        **create_note(e.mona), "object": {
            "id": f"{e.peer.base}/objects/x9", "type": "Note", "content": "<p>x</p>",
            "attributedTo": f"{ELSEWHERE}/users/victim", "to": [AS_PUBLIC]}}),
        403, "attributedTo", 1),
    # To a member's inbox. (The shared inbox and a cooperative's inbox let a cross-host
    # Delete through for a remote moderator, as Lemmy sends it; the worker then honours it
    # only from the moderators of the cooperative the post is in: test_group_actions.py.)
    "delete-of-foreign-object": Case(_signed_activity(lambda e: {
        "@context": AS, "id": f"{e.peer.base}/activities/d1", "type": "Delete",
        "actor": e.mona.id, "object": f"{ELSEWHERE}/objects/1"}, to_member=True),
        403, "object id", 1),
    "activity-id-on-another-host": Case(_signed_activity(lambda e: create_note(
        e.mona, activity_id=f"{ELSEWHERE}/activities/1")), 403, "activity id", 1),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_refused(env: Env, name: str) -> None:
    case = CASES[name]
    url, body, headers = case.build(env)
    assert_json_error(await send(url, body, headers), case.status, case.error)
    await assert_nothing_stored(env.inst)
    assert env.peer.fetches("mona") == case.key_fetches, env.peer.hits


async def test_well_formed_request_is_accepted(env: Env) -> None:
    """The control for the table above: the same shape, done right, is stored."""
    body = orjson.dumps(create_note(env.mona))
    reply = await send(env.inbox, body, signed(env.mona, env.inbox, body))
    assert reply.status == 202, reply
    assert (await stored(env.inst))[0] == 1


# ---- size limit -------------------------------------------------------------------------------


def _oversized(e: Env) -> bytes:
    act = create_note(e.mona, text="x" * (e.inst.settings.max_inbox_body + 10))
    body = orjson.dumps(act)
    assert len(body) > 1_048_576
    return body


async def test_oversized_body_with_content_length(env: Env) -> None:
    body = _oversized(env)
    headers = signed(env.mona, env.inbox, body)  # a valid signature does not help
    assert_json_error(await send(env.inbox, body, headers), 413, "too large")
    await assert_nothing_stored(env.inst)
    assert env.peer.hits == []


async def test_oversized_body_chunked(env: Env) -> None:
    body = _oversized(env)
    headers = signed(env.mona, env.inbox, body)

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 64 * 1024):
            yield body[i:i + 64 * 1024]

    async with ClientSession() as s, s.post(env.inbox, data=chunks(), headers=headers) as resp:
        assert resp.request_info.headers.get("Transfer-Encoding") == "chunked"
        assert "Content-Length" not in resp.request_info.headers
        reply = Reply(resp.status, resp.content_type, orjson.loads(await resp.read()))
    assert_json_error(reply, 413, "too large")
    await assert_nothing_stored(env.inst)
    assert env.peer.hits == []


async def test_body_at_the_limit_is_not_refused_for_size(env: Env) -> None:
    limit = env.inst.settings.max_inbox_body
    act = create_note(env.mona)
    act["object"]["content"] = ""
    pad = limit - len(orjson.dumps(act))
    act["object"]["content"] = "x" * pad
    body = orjson.dumps(act)
    assert len(body) == limit
    reply = await send(env.inbox, body, signed(env.mona, env.inbox, body))
    assert reply.status == 202, reply


# ---- per-actor inboxes ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/u/nobody/inbox", "/c/nobody/inbox", "/c/alice/inbox"])
async def test_inbox_of_unknown_local_actor_is_404(env: Env, path: str) -> None:
    url = env.inst.base + path  # alice is a user, not a cooperative: /c/alice does not exist
    body = orjson.dumps(create_note(env.mona))
    assert_json_error(await send(url, body, signed(env.mona, url, body)), 404, "no such actor")
    await assert_nothing_stored(env.inst)
    assert env.peer.hits == []  # refused before any key fetch


async def test_inbox_of_existing_local_actor_is_accepted(env: Env) -> None:
    url = f"{env.inst.base}/u/alice/inbox"
    body = orjson.dumps(create_note(env.mona))
    reply = await send(url, body, signed(env.mona, url, body))
    assert reply.status == 202, reply
    async with env.inst.session() as s:
        item = (await s.execute(select(InboxItem))).scalar_one()
    assert item.recipient == env.inst.ctx.uris.user("alice")


# ---- unknown-actor Delete (INTEROP §7.16) -----------------------------------------------------


async def test_unknown_actor_self_delete_is_202_without_fetch(env: Env) -> None:
    zed = env.peer.actor("zed")
    delete = {"@context": AS, "id": f"{zed.id}#delete", "type": "Delete", "actor": zed.id,
              "object": zed.id, "to": [AS_PUBLIC]}
    body = orjson.dumps(delete)
    reply = await send(env.inbox, body, signed(zed, env.inbox, body))
    assert reply.status == 202, reply
    assert env.peer.hits == []  # no key fetch for an actor that is gone anyway
    await assert_nothing_stored(env.inst)
    async with env.inst.session() as s:
        assert (await s.execute(select(Actor).where(Actor.uri == zed.id))).scalar() is None
    # The shortcut is not a way around the signature checks that need no key.
    assert_json_error(await send(env.inbox, body, {"Content-Type": AS2}), 401, "signature")
    await assert_nothing_stored(env.inst)


# ---- key rotation -----------------------------------------------------------------------------


async def test_key_rotation_accepted_after_one_refetch(env: Env) -> None:
    inst, peer, mona = env.inst, env.peer, env.mona
    old_private = mona.private_pem

    async def post(private_pem: str) -> Reply:
        body = orjson.dumps(create_note(mona))
        return await send(env.inbox, body, signed(mona, env.inbox, body, private_pem=private_pem))

    assert (await post(old_private)).status == 202
    assert peer.fetches("mona") == 1

    # The peer rotates mona's key: its document now serves the new public key. Rotations
    # come long after the first fetch; age the cached actor past the refetch window.
    mona.private_pem, mona.public_pem = keypair(1)
    async with inst.session() as s, s.begin():
        await s.execute(update(Actor).where(Actor.uri == mona.id).values(
            fetched_at=datetime.now(UTC) - timedelta(minutes=10)))

    assert (await post(mona.private_pem)).status == 202
    assert peer.fetches("mona") == 2  # exactly one refetch

    assert (await post(mona.private_pem)).status == 202
    assert peer.fetches("mona") == 2  # the new key is cached now

    # The old key is refused, and a refused signature does not buy another fetch so soon.
    assert_json_error(await post(old_private), 401, "does not verify")
    assert peer.fetches("mona") == 2
    assert (await stored(inst))[0] == 3


# ---- SSRF: a key fetch redirected to loopback --------------------------------------------------


@dataclass
class Redirector:
    """An origin on the peer's address whose actor URLs redirect to 127.0.0.1, where a
    second server would happily serve the actor document."""

    actor: PeerActor
    front_hits: list[str] = field(default_factory=list)
    hidden_hits: list[str] = field(default_factory=list)
    runners: list[web.AppRunner] = field(default_factory=list)

    @classmethod
    async def start(cls, name: str) -> Redirector:
        front_sock, hidden_sock = free_socket("127.0.0.5"), free_socket("127.0.0.1")
        front_port, hidden_port = front_sock.getsockname()[1], hidden_sock.getsockname()[1]
        priv, pub = keypair(0)
        actor = PeerActor(Peer("127.0.0.5", front_port), name, priv, pub)
        self = cls(actor)

        async def front(request: web.Request) -> web.Response:
            self.front_hits.append(request.path)
            raise web.HTTPFound(f"http://127.0.0.1:{hidden_port}{request.path_qs}")

        async def hidden(request: web.Request) -> web.Response:
            self.hidden_hits.append(request.path)
            return web.Response(body=orjson.dumps(actor.document()), content_type=AS2)

        for sock, handler in ((front_sock, front), (hidden_sock, hidden)):
            app = web.Application()
            app.router.add_get("/users/{name}", handler)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.SockSite(runner, sock).start()
            self.runners.append(runner)
        return self

    async def stop(self) -> None:
        for runner in self.runners:
            await runner.cleanup()


async def test_key_fetch_redirected_to_loopback_is_refused(instances: StartInstance) -> None:
    # Only the peer's address is allowed; 127.0.0.1 is loopback like any other.
    guarded = await instances("127.0.0.2", allow_private_networks="127.0.0.5/32")
    # The control: with the whole of 127.0.0.0/8 allowed, the same request is accepted.
    lax = await instances("127.0.0.3")
    red = await Redirector.start("eve")
    try:
        eve = red.actor

        async def post(inst: Instance) -> Reply:
            url = f"{inst.base}/inbox"
            body = orjson.dumps(create_note(eve))
            return await send(url, body, signed(eve, url, body))

        assert_json_error(await post(guarded), 401, "does not verify")
        assert red.front_hits == [f"/users/{eve.name}"]  # the peer was reached…
        assert red.hidden_hits == []  # …but its redirect to loopback was not followed
        await assert_nothing_stored(guarded)
        async with guarded.session() as s:
            assert (await s.execute(select(Actor).where(Actor.uri == eve.id))).scalar() is None

        reply = await post(lax)
        assert reply.status == 202, reply
        assert red.hidden_hits == [f"/users/{eve.name}"]
    finally:
        await red.stop()
