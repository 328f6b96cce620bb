"""A member's whole journey with Mastodon.py as the app, across two real instances.

On instance A (127.0.0.2) alice registers an app and logs in through the authorization-code
flow and our HTML form, finds the cooperative `fed` of instance B (127.0.0.3) by
`@fed@B` with resolve, follows it, sees a post of a member of B in her home as the
cooperative's boost, replies (the reply reaches B's thread), favourites and boosts it,
posts an image, gets a notification, and reads her `user` stream over server-sent events
(`stream_user`, streaming/sse.py): a new redistribution arrives as `on_update`, a mention
as `on_notification`. Mastodon.py is synchronous: it runs in threads.
"""

from __future__ import annotations

import asyncio
import io
import re
import threading
from typing import Any

import pytest
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.coops.posting import local_post
from t3r1_fed.streaming import sse
from tests.conftest import StartInstance
from tests.integration.accounts_api_support import call, token
from tests.interop._support import require
from tests.interop.test_mastodon_py import APP_REDIRECT, SCOPES, code_login
from tests.testrig import Instance, eventually

pytestmark = [pytest.mark.interop, pytest.mark.federation]

mastodon = require("mastodon", "Mastodon.py>=2")
StreamListener: Any = mastodon.StreamListener


def text_of(status: Any) -> str:
    return re.sub(r"<[^>]+>", "", status["content"]).strip()


async def in_thread(fn: Any, *args: Any, **kw: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kw)


class Listener(StreamListener):  # type: ignore[misc]
    """Collects what Mastodon.py parses from the event stream (called from its thread)."""

    def __init__(self) -> None:
        super().__init__()
        self.updates: list[Any] = []
        self.notifications: list[Any] = []
        self.heartbeats = 0
        self.lock = threading.Lock()

    def on_update(self, status: Any) -> None:
        with self.lock:
            self.updates.append(status)

    def on_notification(self, notification: Any) -> None:
        with self.lock:
            self.notifications.append(notification)

    def handle_heartbeat(self) -> None:
        with self.lock:
            self.heartbeats += 1


async def post_on(inst: Instance, user: str, coop: str, text: str) -> int:
    """A member of `coop` posts into it on `inst`; the post's status id there."""
    async def go(ctx: Context, s: AsyncSession) -> int:
        return (await local_post(ctx, s, user, coop, text)).sid

    return await inst.run(go)


async def test_member_journey_with_mastodon_py(
    instances: StartInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sse, "HEARTBEAT", 0.3)
    a = await instances("127.0.0.2")
    b = await instances("127.0.0.3", oauth_password_grant="1")
    await a.create_user("alice")
    for name in ("bob", "carol"):
        await b.create_user(name)
    await b.create_coop("fed", "bob", title="Fédération")
    bob = await token(b, "bob")

    # 1. The app registers and alice logs in through our form (authorization code).
    m = await code_login(a, "alice", SCOPES, APP_REDIRECT)
    me = await in_thread(m.account_verify_credentials)
    assert me["acct"] == "alice"

    # 2. She finds the cooperative of B and follows it.
    found = await in_thread(m.search_v2, f"@fed@{b.domain}", resolve=True)
    [coop] = found["accounts"]
    assert coop["acct"] == f"fed@{b.domain}" and coop["group"] is True
    await in_thread(m.account_follow, coop["id"])

    async def following() -> bool:
        [rel] = await in_thread(m.account_relationships, coop["id"])
        return bool(rel["following"])

    await eventually(following, what="the Accept of fed@B")

    # 3. A member of B posts into the cooperative: alice sees the group's boost at home.
    b_sid = await post_on(b, "bob", "fed", "Assemblée générale jeudi")

    async def boost_at_home() -> Any:
        feed = await in_thread(m.timeline_home)
        return next((x for x in feed if x["reblog"]
                     and "Assemblée générale" in text_of(x["reblog"])), None)

    boost = await eventually(boost_at_home, what="the redistribution in alice's home")
    assert boost["account"]["acct"] == f"fed@{b.domain}"
    original = boost["reblog"]
    assert original["account"]["acct"] == f"bob@{b.domain}"

    # 4. She replies: the reply reaches the thread on B.
    reply = await in_thread(m.status_post, "J'y serai", in_reply_to_id=original["id"])
    assert str(reply["in_reply_to_id"]) == str(original["id"])

    async def reply_on_b() -> Any:
        _, doc, _ = await call(b, "GET", f"/api/v1/statuses/{b_sid}/context", bob)
        return next((x for x in doc["descendants"]
                     if x["account"]["acct"] == f"alice@{a.domain}"), None)

    b_reply = await eventually(reply_on_b, what="alice's reply in B's thread")
    assert text_of(b_reply) == "J'y serai"

    # 5. She favourites and boosts the post; B counts both.
    fav = await in_thread(m.status_favourite, original["id"])
    assert fav["favourited"] is True
    rb = await in_thread(m.status_reblog, original["id"])
    assert rb["reblogged"] is True and str(rb["reblog"]["id"]) == str(original["id"])

    async def counted_on_b() -> bool:
        _, doc, _ = await call(b, "GET", f"/api/v1/statuses/{b_sid}", bob)
        _, boosters, _ = await call(b, "GET", f"/api/v1/statuses/{b_sid}/reblogged_by", bob)
        return doc["favourites_count"] == 1 and f"alice@{a.domain}" in {
            x["acct"] for x in boosters}

    await eventually(counted_on_b, what="alice's favourite and boost on B")

    # 6. An image uploaded through the media API, then a status with it.
    png = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 60)).save(png, format="PNG")
    media = await in_thread(m.media_post, png.getvalue(), mime_type="image/png",
                            description="Affiche de l'AG", file_name="affiche.png")
    pic = await in_thread(m.status_post, "Notre affiche", media_ids=[media["id"]])
    assert [x["description"] for x in pic["media_attachments"]] == ["Affiche de l'AG"]
    assert pic["media_attachments"][0]["type"] == "image"

    # 7. bob favourites her reply on B: a notification on A.
    status, _, _ = await call(b, "POST", f"/api/v1/statuses/{b_reply['id']}/favourite", bob)
    assert status == 200

    async def favourited() -> Any:
        notes = await in_thread(m.notifications)
        return next((n for n in notes if n["type"] == "favourite"), None)

    note = await eventually(favourited, what="the favourite notification")
    assert note["account"]["acct"] == f"bob@{b.domain}"
    assert str(note["status"]["id"]) == str(reply["id"])

    # 8. The user stream over server-sent events, as Mastodon.py reads it.
    listener = Listener()
    handle = await in_thread(m.stream_user, listener, run_async=True)
    try:
        async def beating() -> bool:
            return listener.heartbeats >= 2  # `:)` then a `:thump`: connected, alive

        await eventually(beating, what="the stream's heartbeat")
        await post_on(b, "bob", "fed", "Grève reconductible votée")

        async def streamed() -> Any:
            with listener.lock:
                return next((u for u in listener.updates if u["reblog"]
                             and "Grève reconductible" in text_of(u["reblog"])), None)

        update = await eventually(streamed, what="on_update for the redistribution")
        assert update["account"]["acct"] == f"fed@{b.domain}"
        assert update["reblog"]["account"]["acct"] == f"bob@{b.domain}"

        status, _, _ = await call(b, "POST", "/api/v1/statuses", bob,
                                  data={"status": f"@alice@{a.domain} tu viens samedi ?"})
        assert status == 200

        async def notified() -> Any:
            with listener.lock:
                return next((n for n in listener.notifications if n["type"] == "mention"),
                            None)

        mention = await eventually(notified, what="on_notification for the mention")
        assert mention["account"]["acct"] == f"bob@{b.domain}"
        assert "tu viens samedi" in text_of(mention["status"])
        assert handle.is_receiving()
    finally:
        # In a thread: closing waits for the reader thread, woken by the next heartbeat
        # that the server (on this event loop) must remain free to send.
        await in_thread(handle.close)
        await in_thread(handle.join, 5)
    assert not handle.is_alive()
