"""Mastodon.py's other HTTP streams against our server-sent events (streaming/sse.py):
`stream_public(local=True)`, `stream_hashtag(local=True)`, `stream_list` and
`stream_user_notifications`, each read by the library's own parser in its thread."""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any

import pytest

from t3r1_fed.actors.follows import follow
from t3r1_fed.coops.news import member_actor, publish_news
from t3r1_fed.coops.posting import local_post
from t3r1_fed.streaming import sse
from tests.conftest import StartInstance
from tests.integration.accounts_api_support import token
from tests.integration.test_api_streaming import _setup
from tests.interop._support import require
from tests.testrig import eventually

pytestmark = pytest.mark.interop

mastodon = require("mastodon", "Mastodon.py>=2")
StreamListener: Any = mastodon.StreamListener


class Collect(StreamListener):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, Any]] = []
        self.lock = threading.Lock()

    def on_any_event(self, name: str, data: Any = None) -> None:
        with self.lock:
            self.events.append((name, data))

    def on_unknown_event(self, name: str, unknown_event: Any = None) -> None:
        pass

    def has(self, name: str, text: str) -> bool:
        with self.lock:
            return any(n == name and text in re.sub(r"<[^>]+>", "", str(d))
                       for n, d in self.events)


async def test_public_hashtag_list_and_notification_streams(
    instances: StartInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sse, "HEARTBEAT", 0.3)
    inst = await instances("127.0.0.2", oauth_password_grant="1")
    await _setup(inst)  # alice and bob members of `syndicat`, carol not
    m = mastodon.Mastodon(access_token=await token(inst, "alice"), api_base_url=inst.base,
                          version_check_mode="none")
    coop = await asyncio.to_thread(m.account_lookup, "syndicat")
    lst = await asyncio.to_thread(m.list_create, "Syndicat")
    await asyncio.to_thread(m.list_accounts_add, lst["id"], [coop["id"]])

    local, tag, listed, notes = Collect(), Collect(), Collect(), Collect()
    handles = [
        await asyncio.to_thread(m.stream_public, local, local=True, run_async=True),
        await asyncio.to_thread(m.stream_hashtag, "Greve", tag, local=True, run_async=True),
        await asyncio.to_thread(m.stream_list, lst["id"], listed, run_async=True),
        await asyncio.to_thread(m.stream_user_notifications, notes, run_async=True),
    ]
    try:
        async def all_receiving() -> bool:
            return all(h.is_receiving() for h in handles)

        await eventually(all_receiving, what="the four streams open")
        await asyncio.sleep(0.5)  # past the first heartbeat: each subscription is in place
        await inst.run(lambda ctx, s: local_post(ctx, s, "bob", "syndicat", "AG jeudi"))

        async def news(ctx: Any, s: Any) -> Any:
            return await publish_news(ctx, s, await member_actor(s, "bob"), "syndicat",
                                      "Préavis #greve déposé")

        await inst.run(news)
        await inst.run(lambda ctx, s: follow(ctx, s, "bob", ctx.uris.user("alice")))

        async def arrived() -> bool:
            return (local.has("update", "AG jeudi") and tag.has("update", "Préavis")
                    and listed.has("update", "AG jeudi")
                    and notes.has("notification", "'follow"))

        await eventually(arrived, what="an event on each stream")
        # Each stream has only its own: no hashtag-less post on the tag stream, no
        # statuses on the notifications stream.
        assert not tag.has("update", "AG jeudi")
        assert not any(n == "update" for n, _ in notes.events)
    finally:
        for h in handles:
            await asyncio.to_thread(h.close)
