"""Mastodon's streaming API over WebSocket, with real instances and a real aiohttp client:
a cooperative's redistribution reaches the `user` stream of its followers only, deletions
and notifications follow, public and hashtag streams, Mastodon's three ways of passing the
token, and events written by another Context (another process: LISTEN/NOTIFY on
PostgreSQL) reaching the web server's sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession, ClientWebSocketResponse, WSMsgType, WSServerHandshakeError
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.follows import follow
from t3r1_fed.context import Context
from t3r1_fed.coops.editing import publish_edit
from t3r1_fed.coops.membership import approve, group_actor, join, user_actor
from t3r1_fed.coops.news import member_actor, publish_news
from t3r1_fed.coops.posting import local_delete, local_post
from tests.conftest import StartInstance
from tests.integration.accounts_api_support import call, token
from tests.testrig import Instance, eventually

Frame = dict[str, Any]


def ws_url(inst: Instance) -> str:
    return inst.base.replace("http://", "ws://") + "/api/v1/streaming"


async def next_frame(ws: ClientWebSocketResponse, want: Callable[[Frame], bool],
                     seen: list[Frame] | None = None, timeout: float = 10.0) -> Frame:
    """The first frame matching `want` (others are kept in `seen`)."""
    async def loop() -> Frame:
        while True:
            msg = await ws.receive()
            assert msg.type == WSMsgType.TEXT, msg
            frame: Frame = orjson.loads(msg.data)
            if want(frame):
                return frame
            if seen is not None:
                seen.append(frame)

    return await asyncio.wait_for(loop(), timeout)


def is_event(stream: str, event: str) -> Callable[[Frame], bool]:
    return lambda f: f.get("stream", [None])[0] == stream and f.get("event") == event


async def subscribe(ws: ClientWebSocketResponse, stream: str, **extra: str) -> None:
    await ws.send_str(orjson.dumps({"type": "subscribe", "stream": stream, **extra}).decode())


async def _setup(inst: Instance) -> None:
    for name in ("alice", "bob", "carol"):
        await inst.create_user(name)
    await inst.create_coop("syndicat", "bob")

    async def go(ctx: Context, s: AsyncSession) -> None:
        for name in ("alice", "bob"):
            await join(ctx, s, await user_actor(s, name), await group_actor(s, "syndicat"))

    await inst.run(go)


async def test_health_discovery_and_refusals(instances: StartInstance) -> None:
    inst = await instances("127.0.0.2", oauth_password_grant="1")
    await inst.create_user("alice")
    async with ClientSession() as http:
        async with http.get(inst.base + "/api/v1/streaming/health") as r:
            assert r.status == 200 and r.content_type == "text/plain"
            assert await r.text() == "OK"
    # Not an upgrade: 404, which tells Mastodon clients to stream from this very host.
    status, body, _ = await call(inst, "GET", "/api/v1/streaming")
    assert status == 404 and "error" in body
    _, v1, _ = await call(inst, "GET", "/api/v1/instance")
    _, v2, _ = await call(inst, "GET", "/api/v2/instance")
    assert v1["urls"]["streaming_api"] == f"ws://{inst.domain}"
    assert v2["configuration"]["urls"]["streaming"] == f"ws://{inst.domain}"

    write_only = await token(inst, "alice", "write")
    async with ClientSession() as http:
        for params in ({}, {"access_token": "not-a-token"}, {"access_token": write_only}):
            with pytest.raises(WSServerHandshakeError) as e:
                await http.ws_connect(ws_url(inst), params=params)
            assert e.value.status == 401
        ok = await token(inst, "alice", "read")
        with pytest.raises(WSServerHandshakeError) as e:
            await http.ws_connect(ws_url(inst), params={"access_token": ok, "stream": "nope"})
        assert e.value.status == 400
        # Bad messages get an error frame; the connection stays open.
        async with http.ws_connect(ws_url(inst), params={"access_token": ok}) as ws:
            await ws.send_str("not json")
            assert (await next_frame(ws, lambda f: "error" in f))["status"] == 400
            await ws.send_str('{"type": "hello"}')  # unknown types are ignored (Mastodon)
            await subscribe(ws, "hashtag")
            err = await next_frame(ws, lambda f: "error" in f)
            assert err["status"] == 400 and "tag" in err["error"]
            await subscribe(ws, "list", list="999")
            assert (await next_frame(ws, lambda f: "error" in f))["status"] == 404
            for i in range(40):
                await subscribe(ws, "hashtag", tag=f"t{i}")
            assert "Too many" in (await next_frame(ws, lambda f: "error" in f))["error"]
        # A notifications-only token may not watch statuses.
        notif = await token(inst, "alice", "read:notifications")
        async with http.ws_connect(ws_url(inst), params={"access_token": notif}) as ws:
            await subscribe(ws, "public")
            assert (await next_frame(ws, lambda f: "error" in f))["status"] == 401


async def test_user_stream_redistribution_delete_notification(
    instances: StartInstance,
) -> None:
    inst = await instances("127.0.0.2", oauth_password_grant="1")
    await _setup(inst)
    alice, carol = await token(inst, "alice"), await token(inst, "carol")
    async with ClientSession() as http:
        # The token three ways: query (with ?stream=), Authorization, Sec-WebSocket-Protocol.
        a = await http.ws_connect(ws_url(inst), params={"access_token": alice, "stream": "user"})
        c = await http.ws_connect(ws_url(inst), headers={"Authorization": f"Bearer {carol}"})
        await subscribe(c, "user")
        await subscribe(c, "public:local")
        p = await http.ws_connect(ws_url(inst), protocols=[carol])
        assert p.protocol == carol
        await subscribe(p, "hashtag", tag="Greve")
        await asyncio.sleep(0.2)  # subscriptions are processed in order, before the posts

        post = await inst.run(lambda ctx, s: local_post(ctx, s, "bob", "syndicat", "AG jeudi"))
        # alice follows the cooperative: its redistribution (a boost by the group).
        frame = await next_frame(a, is_event("user", "update"))
        status = orjson.loads(frame["payload"])
        assert frame["stream"] == ["user"]
        assert status["account"]["username"] == "syndicat"
        assert status["reblog"]["account"]["username"] == "bob"
        assert "AG jeudi" in status["reblog"]["content"]
        assert status["reblog"]["id"] == str(post.sid)
        boost_id = status["id"]
        # carol follows nobody: public:local has the post itself, `user` nothing.
        seen: list[Frame] = []
        frame = await next_frame(c, is_event("public:local", "update"), seen)
        assert orjson.loads(frame["payload"])["id"] == str(post.sid)

        # A notification (bob follows carol) comes after everything above on carol's socket.
        carol_uri = inst.ctx.uris.user("carol")
        await inst.run(lambda ctx, s: follow(ctx, s, "bob", carol_uri))
        frame = await next_frame(c, is_event("user", "notification"), seen)
        note = orjson.loads(frame["payload"])
        assert note["type"] in ("follow", "follow_request")
        assert note["account"]["username"] == "bob"
        assert not [f for f in seen if f["stream"] == ["user"]], seen

        # A hashtag post reaches the hashtag stream (case-insensitive).
        async def news(ctx: Context, s: AsyncSession) -> Any:
            return await publish_news(ctx, s, await member_actor(s, "bob"), "syndicat",
                                      "Préavis #greve déposé")

        tagged = await inst.run(news)
        frame = await next_frame(p, is_event("hashtag", "update"))
        assert frame["stream"] == ["hashtag", "greve"]
        assert orjson.loads(frame["payload"])["id"] == str(tagged.sid)

        # Deletion: alice's stream drops the boost (and the post id).
        await inst.run(lambda ctx, s: local_delete(ctx, s, "bob", post.uri))
        deleted: set[str] = set()
        while boost_id not in deleted:
            frame = await next_frame(a, is_event("user", "delete"))
            deleted.add(frame["payload"])
        frame = await next_frame(c, is_event("public:local", "delete"))
        assert frame["payload"] == str(post.sid)

        # Unsubscribe: carol's public:local no longer receives.
        await c.send_str('{"type":"unsubscribe","stream":"public:local"}')
        await asyncio.sleep(0.2)
        await inst.run(lambda ctx, s: local_post(ctx, s, "bob", "syndicat", "encore"))
        await inst.run(lambda ctx, s: follow(ctx, s, "alice", carol_uri))
        seen = []
        await next_frame(c, is_event("user", "notification"), seen)
        assert not [f for f in seen if f.get("stream", [""])[0] == "public:local"], seen
        for ws in (a, c, p):
            await ws.close()


async def test_events_from_another_process(instances: StartInstance) -> None:
    """Writes through a second Context (its own engine, as `t3r1 worker` or the CLI would)
    reach the server's sockets: LISTEN/NOTIFY on PostgreSQL, the same database's hub on
    SQLite. Also: shutting the server down closes the sockets cleanly."""
    inst = await instances("127.0.0.2", oauth_password_grant="1")
    await _setup(inst)
    alice = await token(inst, "alice")
    other = Context.create(inst.settings)
    assert other.engine is not inst.ctx.engine
    try:
        async with ClientSession() as http:
            ws = await http.ws_connect(ws_url(inst), params={"access_token": alice})
            await subscribe(ws, "user")
            await subscribe(ws, "public")
            await asyncio.sleep(0.2)
            async with other.sessions() as s, s.begin():
                post = await local_post(other, s, "bob", "syndicat", "depuis le worker")
            frame = await next_frame(ws, is_event("public", "update"))
            assert orjson.loads(frame["payload"])["id"] == str(post.sid)
            frame = await next_frame(ws, is_event("user", "update"))
            assert orjson.loads(frame["payload"])["reblog"]["id"] == str(post.sid)
            # A rolled-back write sends nothing.
            async with other.sessions() as s:
                await s.begin()
                await local_post(other, s, "bob", "syndicat", "annulé")
                await s.rollback()
            async with other.sessions() as s, s.begin():
                last = await local_post(other, s, "bob", "syndicat", "dernier")
            frame = await next_frame(ws, is_event("public", "update"))
            assert orjson.loads(frame["payload"])["id"] == str(last.sid)

            async def until_closed() -> WSMsgType:
                msg = await ws.receive()
                while msg.type == WSMsgType.TEXT:
                    msg = await ws.receive()
                return msg.type

            closed = asyncio.create_task(until_closed())  # a client is always reading
            await asyncio.wait_for(inst.stop(), 10)
            assert await asyncio.wait_for(closed, 10) == WSMsgType.CLOSE
            assert ws.close_code == 1001
    finally:
        await other.engine.dispose()


async def test_private_coop_list_and_edit(instances: StartInstance) -> None:
    """A private cooperative's post reaches its members only (never a public stream, never a
    non-member's `user`); a list holding the cooperative streams it; an edit reaches the
    members as `status.update`."""
    inst = await instances("127.0.0.2", oauth_password_grant="1")
    for name in ("alice", "bob", "carol"):
        await inst.create_user(name)
    await inst.create_coop("secret", "bob", private=True)

    async def members(ctx: Context, s: AsyncSession) -> None:
        group, bob = await group_actor(s, "secret"), await user_actor(s, "bob")
        for name in ("alice", "bob"):
            await join(ctx, s, await user_actor(s, name), group)
        await approve(ctx, s, bob, group, await user_actor(s, "alice"))
        await join(ctx, s, await user_actor(s, "carol"), group)  # pending: not a member

    await inst.run(members)
    alice, carol = await token(inst, "alice"), await token(inst, "carol")
    status, lst, _ = await call(inst, "POST", "/api/v1/lists", alice, json={"title": "Syndic"})
    assert status == 200, lst
    _, coop, _ = await call(inst, "GET", "/api/v1/accounts/lookup", alice,
                            params={"acct": "secret"})
    status, body, _ = await call(inst, "POST", f"/api/v1/lists/{lst['id']}/accounts", alice,
                                 json={"account_ids": [coop["id"]]})
    assert status == 200, body
    async with ClientSession() as http:
        a = await http.ws_connect(ws_url(inst), params={"access_token": alice})
        await subscribe(a, "user")
        await subscribe(a, "list", list=lst["id"])
        c = await http.ws_connect(ws_url(inst), params={"access_token": carol})
        for stream in ("user", "public", "public:local"):
            await subscribe(c, stream)
        await asyncio.sleep(0.2)
        post = await inst.run(lambda ctx, s: local_post(ctx, s, "bob", "secret", "entre nous"))
        got: dict[str, Frame] = {}
        while len(got) < 2:  # one frame per subscription, in no promised order
            frame = await next_frame(a, lambda f: f.get("event") == "update")
            got[frame["stream"][0]] = frame
        assert got["list"]["stream"] == ["list", lst["id"]]
        for frame in got.values():
            status = orjson.loads(frame["payload"])
            assert status["reblog"]["id"] == str(post.sid)
            assert status["reblog"]["visibility"] == "private"

        async def edit(ctx: Context, s: AsyncSession) -> None:
            from sqlalchemy import select

            from t3r1_fed.db.models import Object

            row = (await s.execute(select(Object).where(Object.id == post.id))).scalar_one()
            await publish_edit(ctx, s, await user_actor(s, "bob"), row,
                               {"content": "<p>entre nous, modifié</p>"})

        await inst.run(edit)
        frame = await next_frame(a, is_event("user", "status.update"))
        edited = orjson.loads(frame["payload"])
        assert edited["id"] == str(post.sid) and "modifié" in edited["content"]
        assert edited["edited_at"] is not None

        # carol (a pending request, not a member) got nothing of it: her next frame is
        # her own notification, written after all of the above.
        carol_uri = inst.ctx.uris.user("carol")
        await inst.run(lambda ctx, s: follow(ctx, s, "bob", carol_uri))
        seen: list[Frame] = []
        await next_frame(c, is_event("user", "notification"), seen)
        assert seen == [], seen
        for ws in (a, c):
            await ws.close()


async def test_revoked_token_closes_the_stream(
    instances: StartInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import update

    from t3r1_fed.db.models import utcnow
    from t3r1_fed.db.models_api import OAuthToken
    from t3r1_fed.oauth.auth import digest
    from t3r1_fed.streaming import connection

    monkeypatch.setattr(connection, "TOKEN_RECHECK", 0.2)
    inst = await instances("127.0.0.2", oauth_password_grant="1")
    await inst.create_user("alice")
    alice = await token(inst, "alice")
    async with ClientSession() as http:
        ws = await http.ws_connect(ws_url(inst), params={"access_token": alice,
                                                         "stream": "user"})
        await asyncio.sleep(0.5)
        assert not ws.closed

        async def revoke(ctx: Context, s: AsyncSession) -> None:
            await s.execute(update(OAuthToken).where(OAuthToken.token_hash == digest(alice))
                            .values(revoked_at=utcnow()))

        await inst.run(revoke)
        msg = await asyncio.wait_for(ws.receive(), 10)
        assert msg.type == WSMsgType.CLOSE and ws.close_code == 1008


async def test_listen_connection_comes_back(instances: StartInstance, backend: str) -> None:
    """PostgreSQL: the LISTEN connection, killed, is reconnected (health says 503 meanwhile)
    and events flow again."""
    if backend != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    from sqlalchemy import text

    from t3r1_fed.streaming.bus import APPLICATION_NAME

    inst = await instances("127.0.0.2", oauth_password_grant="1")
    await _setup(inst)
    alice = await token(inst, "alice")

    async def kill(ctx: Context, s: AsyncSession) -> int:
        res = await s.execute(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = :name AND datname = current_database()"
        ), {"name": APPLICATION_NAME})
        return int(res.scalar_one())

    assert await inst.run(kill) == 1
    async with ClientSession() as http:
        async def health() -> int:
            async with http.get(inst.base + "/api/v1/streaming/health") as r:
                return r.status

        async def down() -> bool:
            return await health() == 503

        async def up() -> bool:
            return await health() == 200

        await eventually(down, what="LISTEN connection loss noticed")
        await eventually(up, what="LISTEN reconnected")
        ws = await http.ws_connect(ws_url(inst), params={"access_token": alice,
                                                         "stream": "public:local"})
        post = await inst.run(lambda ctx, s: local_post(ctx, s, "bob", "syndicat", "retour"))
        frame = await next_frame(ws, is_event("public:local", "update"))
        assert orjson.loads(frame["payload"])["id"] == str(post.sid)
        await ws.close()
