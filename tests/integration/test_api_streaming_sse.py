"""Mastodon's streaming API over HTTP (server-sent events, streaming/sse.py) with a real
aiohttp client: refusals before the stream starts, the `:)` opening and `:thump`
heartbeat, `event:`/`data:` frames on the path's stream (public:local, hashtag, user with
a cooperative's redistribution, `only_media`), deletions as a bare id, and the stream
ended when the client leaves and on shutdown."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import orjson
import pytest
from aiohttp import ClientResponse, ClientSession, ClientTimeout, FormData
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.coops.news import member_actor, publish_news
from t3r1_fed.coops.posting import local_delete, local_post
from t3r1_fed.streaming import sse
from t3r1_fed.streaming.handlers import STREAMING
from tests.conftest import StartInstance
from tests.integration.accounts_api_support import call, token
from tests.integration.test_api_streaming import _setup
from tests.testrig import Instance, eventually

Event = tuple[str, str]  # (event, data); ("", comment) for comment lines


async def read_event(r: ClientResponse, timeout: float = 10.0) -> Event:
    """The next event (or comment line) of a text/event-stream response."""
    async def go() -> Event:
        fields: dict[str, str] = {}
        while True:
            raw = await r.content.readline()
            assert raw, "the stream ended"
            line = raw.decode().rstrip("\n")
            if line.startswith(":") and not fields:
                return "", line
            if line == "":
                if fields:
                    return fields["event"], fields["data"]
                continue
            key, _, value = line.partition(": ")
            fields[key] = value

    return await asyncio.wait_for(go(), timeout)


async def next_event(r: ClientResponse, event: str, timeout: float = 10.0) -> str:
    async def go() -> str:
        while True:
            name, data = await read_event(r, timeout)
            if name == event:
                return data

    return await asyncio.wait_for(go(), timeout)


def url(inst: Instance, path: str) -> str:
    return inst.base + "/api/v1/streaming/" + path


async def test_refusals_and_heartbeat(
    instances: StartInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sse, "HEARTBEAT", 0.2)
    inst = await instances("127.0.0.2", oauth_password_grant="1")
    await inst.create_user("alice")
    read, notif = await token(inst, "alice", "read"), await token(inst, "alice",
                                                                  "read:notifications")
    # Without a token, with a bad one, with a write-only one: 401 JSON before any stream.
    for tok in (None, "not-a-token", await token(inst, "alice", "write")):
        status, body, _ = await call(inst, "GET", "/api/v1/streaming/user", tok)
        assert status == 401 and "error" in body
    status, body, _ = await call(inst, "GET", "/api/v1/streaming/hashtag", read)
    assert status == 400 and "tag" in body["error"]
    status, body, _ = await call(inst, "GET", "/api/v1/streaming/list", read,
                                 params={"list": "999"})
    assert status == 404
    status, body, _ = await call(inst, "GET", "/api/v1/streaming/public", notif)
    assert status == 401  # a notifications-only token may not watch statuses
    status, _, _ = await call(inst, "GET", "/api/v1/streaming/direct", read)
    assert status == 404  # not served (nor by the WebSocket)
    status, _, _ = await call(inst, "GET", "/api/v1/streaming", read)
    assert status == 404  # the WebSocket URL without an upgrade, as before

    async with ClientSession(timeout=ClientTimeout(total=20)) as http:
        async with http.get(url(inst, "user/notification"),
                            params={"access_token": notif}) as r:
            assert r.status == 200 and r.content_type == "text/event-stream"
            assert "no-store" in r.headers["Cache-Control"]
            assert await read_event(r) == ("", ":)")
            assert await read_event(r) == ("", ":thump")


async def test_events_on_the_paths_streams(
    instances: StartInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sse, "HEARTBEAT", 0.5)
    inst = await instances("127.0.0.2", oauth_password_grant="1")
    await _setup(inst)  # alice and bob members of `syndicat` (bob its owner), carol not
    alice, carol = await token(inst, "alice"), await token(inst, "carol")

    async with ClientSession(timeout=ClientTimeout(total=30)) as http:
        home = await http.get(url(inst, "user"), headers={"Authorization": f"Bearer {alice}"})
        local = await http.get(url(inst, "public/local"), params={"access_token": carol})
        tag = await http.get(url(inst, "hashtag/local"),
                             params={"access_token": carol, "tag": "Greve"})
        media = await http.get(url(inst, "public"),
                               params={"access_token": carol, "only_media": "true"})
        streams = (home, local, tag, media)
        try:
            for r in streams:
                assert r.status == 200
                assert await read_event(r) == ("", ":)")

            post = await inst.run(lambda ctx, s: local_post(ctx, s, "bob", "syndicat",
                                                            "AG jeudi"))
            # alice follows the cooperative: its redistribution, a boost by the group.
            status = orjson.loads(await next_event(home, "update"))
            assert status["account"]["username"] == "syndicat"
            assert status["reblog"]["id"] == str(post.sid)
            # The public stream takes the post itself, not the boost.
            assert orjson.loads(await next_event(local, "update"))["id"] == str(post.sid)

            async def news(ctx: Context, s: AsyncSession) -> Any:
                return await publish_news(ctx, s, await member_actor(s, "bob"), "syndicat",
                                          "Préavis #greve déposé")

            tagged = await inst.run(news)
            assert orjson.loads(await next_event(tag, "update"))["id"] == str(tagged.sid)

            # A post with an image: the only_media stream takes it (and only it).
            png = io.BytesIO()
            Image.new("RGB", (8, 8), (0, 0, 0)).save(png, format="PNG")
            bob = await token(inst, "bob")
            form = FormData()
            form.add_field("file", png.getvalue(), filename="a.png", content_type="image/png")
            async with http.post(inst.base + "/api/v2/media",
                                 headers={"Authorization": f"Bearer {bob}"}, data=form) as up:
                assert up.status in (200, 202), await up.text()
                media_id: Any = (await up.json())["id"]
            pic = await inst.run(lambda ctx, s: local_post(
                ctx, s, "bob", "syndicat", "Affiche", media_ids=[int(media_id)]))
            got = orjson.loads(await next_event(media, "update"))
            assert got["id"] == str(pic.sid) and got["media_attachments"]

            # A deletion: `data:` is the bare id.
            await inst.run(lambda ctx, s: local_delete(ctx, s, "bob", post.uri))
            assert await next_event(local, "delete") == str(post.sid)
        finally:
            for r in streams:
                r.close()


async def test_stream_ends_when_the_client_leaves_and_on_shutdown(
    instances: StartInstance,
) -> None:
    inst = await instances("127.0.0.2", oauth_password_grant="1")
    await inst.create_user("alice")
    tok = await token(inst, "alice")
    hub = inst.runner.app[STREAMING].hub
    async with ClientSession(timeout=ClientTimeout(total=20)) as http:
        r = await http.get(url(inst, "public"), params={"access_token": tok})
        assert await read_event(r) == ("", ":)")
        assert len(hub.subscribers) == 1
        r.close()  # the client goes: its subscription goes too (within DISCONNECT_POLL)

        async def gone() -> bool:
            return not hub.subscribers

        await eventually(gone, timeout=5, what="the subscription dropped")
        async with http.get(url(inst, "public"), params={"access_token": tok}) as r:
            assert await read_event(r) == ("", ":)")
            await asyncio.wait_for(inst.stop(), 10)
            rest = await asyncio.wait_for(r.content.read(), 5)
            assert b"event:" not in rest
