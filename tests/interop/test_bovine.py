"""bovine (PyPI `bovine`, 0.5.x) as a remote actor that joins one of our cooperatives.

Everything that judges us here is bovine's code, not ours:

* the remote actor's document and keys come from bovine's helpers
  (`bovine.activitystreams.Actor`, `bovine.crypto.generate_rsa_public_private_key`);
* what it sends is signed by bovine's signer (`BovineActor.post` / `BovineActor.get`:
  draft-cavage, lowercase `digest: sha-256=…`);
* every request we make to it (inbox POSTs and the signed GETs of its actor document) is
  verified by bovine's own HTTP-signature checker (`build_validate_http_signature_raw`,
  the function behind bovine's test server), with the key fetched by bovine and checked by
  bovine's parser (`bovine.parse.Actor.publicKeyPem`: key id listed and owned by the actor);
* what we send and serve is parsed with `bovine.parse` (JSON-LD compaction against
  bovine's context, follow/accept and create/attributedTo validation).

The peer listens on 127.0.0.6; our instance runs on 127.0.0.2 (tests/testrig.py).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import ClientSession, web

from t3r1_fed.vocab.context import AS_PUBLIC
from tests.conftest import StartInstance
from tests.interop._support import require
from tests.testrig import free_socket

pytestmark = pytest.mark.interop

require("bovine", "bovine>=0.5.19,<0.6")

from bovine import BovineActor  # noqa: E402
from bovine.activitystreams import Actor as ActorBuilder  # noqa: E402
from bovine.activitystreams.activity_factory import ActivityFactory  # noqa: E402
from bovine.clients import lookup_uri_with_webfinger  # noqa: E402
from bovine.clients.signed_http import legacy_digest_method  # noqa: E402
from bovine.clients.signed_http_methods import signed_post  # noqa: E402
from bovine.crypto import (  # noqa: E402
    build_validate_http_signature_raw,
    generate_rsa_public_private_key,
)
from bovine.crypto.signature import Signature  # noqa: E402
from bovine.crypto.types import CryptographicIdentifier, CryptographicSecret  # noqa: E402
from bovine.parse import Activity as ParsedActivity  # noqa: E402
from bovine.parse import Actor as ParsedActor  # noqa: E402
from bovine.parse import Object as ParsedObject  # noqa: E402
from bovine.utils import webfinger_response_json  # noqa: E402

AS2 = "application/activity+json"


@dataclass
class Seen:
    """One request we made to the bovine peer, and bovine's verdict on its signature."""

    method: str
    path: str
    key_id: str | None
    controller: str | None  # what bovine's verifier returned: the key's owner, or None
    body: dict[str, Any] | None = None


@dataclass
class BovinePeer:
    ip: str
    handle: str = "buttercup"
    seen: list[Seen] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None
    _session: ClientSession | None = None

    @property
    def base(self) -> str:
        return f"http://{self.ip}:{self.port}"

    @property
    def actor_id(self) -> str:
        return f"{self.base}/actor"

    async def start(self) -> BovinePeer:
        sock: socket.socket = free_socket(self.ip)
        self.port = sock.getsockname()[1]
        public_pem, private_pem = generate_rsa_public_private_key()
        self.private_pem = private_pem
        self.document = ActorBuilder(
            id=self.actor_id, preferred_username=self.handle, name="Buttercup (bovine)",
            inbox=f"{self.base}/inbox", outbox=f"{self.base}/outbox",
            followers=f"{self.base}/followers", following=f"{self.base}/following",
            public_key=public_pem, public_key_name="main-key",
        ).build()
        self._session = ClientSession()
        self.actor = BovineActor(actor_id=self.actor_id, public_key_url=f"{self.actor_id}#main-key",
                                 secret=private_pem)
        await self.actor.init(session=self._session)
        self.verify = build_validate_http_signature_raw(self._key_for)

        app = web.Application()
        app.router.add_get("/actor", self._get_actor)
        app.router.add_post("/inbox", self._inbox)
        app.router.add_get("/.well-known/webfinger", self._webfinger)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _key_for(self, key_id: str) -> CryptographicIdentifier | None:
        """bovine fetches the key (signed GET) and bovine's parser checks id and owner."""
        doc = await self.actor.get(key_id)
        actor = ParsedActor(doc, domain=urlsplit(key_id).netloc)
        pem = actor.publicKeyPem(key_id)
        return CryptographicIdentifier.from_pem(pem, actor.id)

    async def _check(self, request: web.Request) -> Seen:
        sig = request.headers.get("signature")
        key_id = Signature.from_signature_header(sig).key_id if sig else None
        body = await request.read() if request.method == "POST" else None
        controller = await self.verify(request.method, str(request.url), request.headers,
                                       request.read)
        seen = Seen(request.method, request.path, key_id, controller,
                    json.loads(body) if body else None)
        self.seen.append(seen)
        return seen

    async def _get_actor(self, request: web.Request) -> web.Response:
        if "signature" in request.headers:
            await self._check(request)
        return web.json_response(self.document, content_type=AS2)

    async def _inbox(self, request: web.Request) -> web.Response:
        seen = await self._check(request)
        if seen.controller is None:
            return web.Response(status=401, text="bovine: signature does not verify")
        return web.Response(status=202)

    async def _webfinger(self, request: web.Request) -> web.Response:
        resource = request.query.get("resource", "")
        if resource != f"acct:{self.handle}@{self.ip}:{self.port}":
            return web.Response(status=404)
        return web.json_response(webfinger_response_json(resource, self.actor_id),
                                 content_type="application/jrd+json")

    def inbox_activities(self, type_: str) -> list[Seen]:
        return [s for s in self.seen if s.method == "POST" and s.body
                and s.body.get("type") == type_]

    async def wait_for(self, type_: str, count: int, timeout: float = 15.0) -> list[Seen]:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            got = self.inbox_activities(type_)
            if len(got) >= count:
                return got
            await asyncio.sleep(0.05)
        saw = [(s.method, s.path, s.body and s.body.get("type"), s.controller) for s in self.seen]
        raise AssertionError(f"bovine got {len(self.inbox_activities(type_))} {type_}, "
                             f"expected {count}; everything it saw: {saw}")


async def test_bovine_follows_coop_and_verifies_our_signatures(instances: StartInstance) -> None:
    inst = await instances("127.0.0.2")
    await inst.create_user("alice")
    coop = await inst.create_coop("syndicat", "alice")
    alice = f"{inst.base}/u/alice"
    peer = await BovinePeer("127.0.0.6").start()
    try:
        # 1. bovine fetches the cooperative (signed GET) and parses it.
        group_doc = await peer.actor.get(coop)
        group = ParsedActor(group_doc, domain=inst.domain)
        assert group.id == coop
        assert group.data["type"] == "Group"
        assert group.data["inbox"] == f"{coop}/inbox"
        assert group.publicKeyPem(f"{coop}#main-key").startswith("-----BEGIN PUBLIC KEY-----")
        identifiers = group.cryptographic_identifiers
        assert [i.controller for i in identifiers] == [coop]
        assert group.unvalidated_acct_uri == f"acct:syndicat@{inst.domain}"
        # bovine's WebFinger round trip (preferredUsername@host → the same actor id).
        found, _ = await lookup_uri_with_webfinger(peer._session, group.unvalidated_acct_uri,
                                                   inst.base)
        assert found == coop

        # 2. bovine follows the cooperative, signed by bovine.
        follow = ActivityFactory(peer.document, id_generator=lambda: (
            f"{peer.base}/follows/{secrets.token_urlsafe(6)}")).follow(coop).build()
        response = await peer.actor.post(group.data["inbox"], follow)
        assert response.status == 202

        # 3. The Accept arrives, its signature verified by bovine, signer == actor == coop.
        accept = (await peer.wait_for("Accept", 1))[0]
        assert accept.controller == coop, accept
        assert accept.key_id == f"{coop}#main-key"
        assert accept.body is not None and accept.body["actor"] == coop
        parsed_follow = await ParsedActivity(accept.body, domain=inst.domain).accept_for_follow(
            peer.actor.get)
        assert parsed_follow is not None, f"bovine reads no Accept of a Follow: {accept.body}"
        assert parsed_follow.data["id"] == follow["id"]
        assert parsed_follow.actor_id == peer.actor_id

        # 4. A member posts into the cooperative; bovine, a follower, receives both forms.
        from t3r1_fed.coops.posting import local_post

        note = await inst.run(lambda ctx, s: local_post(
            ctx, s, "alice", "syndicat", "Assemblée générale jeudi à 18 h"))
        announces = await peer.wait_for("Announce", 2)
        assert len(announces) == 2, [a.body for a in announces]
        for a in announces:
            assert a.controller == coop, a
            assert a.key_id == f"{coop}#main-key"
            assert a.body is not None and a.body["actor"] == coop
        by_form = {isinstance(a.body["object"], dict): a.body for a in announces if a.body}
        assert set(by_form) == {True, False}

        # FEP-1b12: Announce(Create) — bovine checks the Create and its object agree.
        wrapped = ParsedActivity(by_form[True], domain=inst.domain)
        create = ParsedActivity(by_form[True]["object"], domain=inst.domain)
        assert wrapped.object_id == create.data["id"]
        created = await create.object_for_create(peer.actor.get)
        assert created is not None
        assert created.identifier == note.uri
        assert created.attributed_to_id == alice
        assert "Assemblée générale jeudi" in created.data["content"]
        assert [m["href"] for m in created.mentions] == [coop]

        # Mastodon-style boost: Announce(object id), public, to the followers.
        boost = by_form[False]
        assert boost["object"] == note.uri
        assert boost["to"] == [AS_PUBLIC] and boost["cc"] == [f"{coop}/followers"]
        assert "published" in boost

        # 5. bovine dereferences what was announced, with signed GETs, and parses it.
        fetched_note = ParsedObject(await peer.actor.get(note.uri), domain=inst.domain)
        assert fetched_note.identifier == note.uri
        assert fetched_note.attributed_to_id == alice
        fetched_create = ParsedActivity(await peer.actor.get(create.data["id"]),
                                        domain=inst.domain)
        assert fetched_create.is_create and fetched_create.actor_id == alice
        assert (await fetched_create.object_for_create(peer.actor.get)).identifier == note.uri
        for announce in (by_form[True], boost):
            fetched = await peer.actor.get(announce["id"])
            assert fetched["id"] == announce["id"] and fetched["actor"] == coop
        followers = await peer.actor.get(group.data["followers"])
        assert followers["totalItems"] == 1

        # 6. Every request we made to bovine was signed, and bovine verified every one:
        #    POSTs by the cooperative, GETs of bovine's actor by our instance actor.
        failed = [s for s in peer.seen if s.controller is None]
        assert not failed, f"bovine rejected our signatures: {failed}"
        gets = [s for s in peer.seen if s.method == "GET"]
        assert gets, "we never fetched bovine's actor with a signed GET"
        assert {s.controller for s in gets} == {f"{inst.base}/actor"}
        assert {s.path for s in peer.seen if s.method == "POST"} == {"/inbox"}

        # Control: bovine's checker is no rubber stamp. A POST claiming the cooperative's key
        # but signed with another one, and an unsigned POST, are both refused.
        forged = CryptographicSecret.from_pem(f"{coop}#main-key", peer.private_pem)
        body = json.dumps({**boost, "id": f"{coop}/forged"})
        response = await signed_post(peer._session, forged, f"{peer.base}/inbox", body,
                                     legacy_digest_method)
        assert response.status == 401
        async with peer._session.post(f"{peer.base}/inbox", data=body,
                                      headers={"content-type": AS2}) as unsigned:
            assert unsigned.status == 401
        assert [s.controller for s in peer.seen[-2:]] == [None, None]
    finally:
        await peer.stop()
