"""The home timeline is the unified feed: cooperatives followed here and on another instance,
each post once at its newest boost, paginated with Link headers; public and hashtag
timelines. Real instances on loopback, a real remote peer posting into three cooperatives."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp import ClientSession
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.follows import follow
from t3r1_fed.context import Context
from t3r1_fed.coops.membership import group_actor, join, user_actor
from t3r1_fed.coops.news import publish_news
from t3r1_fed.coops.posting import local_post
from t3r1_fed.db.models import Follow, Share
from tests.conftest import StartInstance
from tests.integration.accounts_api_support import token
from tests.peer import Peer
from tests.testrig import Instance, eventually

pytestmark = pytest.mark.federation


async def api_get(inst: Instance, path: str, tok: str | None = None,
                  **params: Any) -> tuple[int, Any, str]:
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    url = path if path.startswith("http") else inst.base + path
    async with ClientSession() as http, http.get(url, headers=headers, params=params) as r:
        return r.status, await r.json(), r.headers.get("Link", "")


def next_link(link: str, rel: str = "next") -> str | None:
    m = re.search(r'<([^>]+)>; rel="' + rel + '"', link)
    return m.group(1) if m else None


async def _join(ctx: Context, s: AsyncSession, user: str, coop: str) -> None:
    await join(ctx, s, await user_actor(s, user), await group_actor(s, coop))


async def test_home_is_one_feed_deduplicated_and_paginated(instances: StartInstance) -> None:
    a = await instances("127.0.0.2", oauth_password_grant="1")
    b = await instances("127.0.0.3")
    for name in ("alice", "bob"):
        await a.create_user(name)
    await b.create_user("carol")
    for coop in ("c1", "c2", "c3"):
        await a.create_coop(coop, "bob")
    await b.create_coop("fed", "carol")

    async def follows(ctx: Context, s: AsyncSession) -> None:
        for coop in ("c1", "c2", "c3"):
            await _join(ctx, s, "alice", coop)
        await _join(ctx, s, "bob", "c1")
        await follow(ctx, s, "alice", f"fed@{b.domain}")

    await a.run(follows)

    async def accepted(ctx: Context, s: AsyncSession) -> int:
        return (await s.execute(
            select(func.count()).select_from(Follow).where(Follow.state == "accepted")
        )).scalar_one()

    await eventually(lambda: _expect(a.run(accepted), 5))

    # A remote member posts once into three cooperatives: three boosts of one post.
    peer = await Peer("127.0.0.4").start()
    try:
        dave = peer.actor("dave")
        coops = [a.ctx.uris.coop(c) for c in ("c1", "c2", "c3")]
        note = peer.note(dave, "Grève le 5", to=["https://www.w3.org/ns/activitystreams#Public"],
                         cc=coops)
        status, _ = await dave.post(a.base + "/inbox", {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": note["id"] + "/create", "type": "Create", "actor": dave.id,
            "object": note, "to": note["to"], "cc": note["cc"],
        })
        assert status == 202

        async def shares(ctx: Context, s: AsyncSession) -> int:
            return (await s.execute(select(func.count()).select_from(Share))).scalar_one()

        await eventually(lambda: _expect(a.run(shares), 3))

        # Local posts into cooperatives alice follows; carol's post on the other instance.
        async def post(ctx: Context, s: AsyncSession) -> None:
            await publish_news(ctx, s, await user_actor(s, "bob"), "c1",
                               "Réunion de section #syndicat")
            await local_post(ctx, s, "alice", "c2", "Mon premier message")

        await a.run(post)
        await b.run(lambda ctx, s: local_post(ctx, s, "carol", "fed", "Congrès fédéral"))
        await eventually(lambda: _expect(a.run(shares), 6))

        tok = await token(a, "alice")
        status, feed, link = await api_get(a, "/api/v1/timelines/home", tok)
        assert status == 200
        texts = [_text(st) for st in feed]
        assert len(feed) == 4, texts
        assert sorted(texts) == sorted(
            ["Grève le 5", "Réunion de section #syndicat", "Mon premier message",
             "Congrès fédéral"]
        )
        # Every entry is a cooperative's redistribution: a Status by the group with `reblog`.
        for st in feed:
            assert st["reblog"] is not None and st["account"]["group"] is True
            assert st["reblog"]["account"]["group"] is False
        by_text = {_text(st): st for st in feed}
        assert by_text["Congrès fédéral"]["account"]["acct"] == f"fed@{b.domain}"
        assert by_text["Grève le 5"]["reblog"]["account"]["acct"] == f"dave@{peer.domain}"
        # The post boosted by three cooperatives appears once, at its newest boost.
        assert by_text["Grève le 5"]["account"]["acct"] == "c3"
        ids = [int(st["id"]) for st in feed]
        assert ids == sorted(ids, reverse=True)
        assert next_link(link) and next_link(link, "prev")

        # Pages of two, following Link headers, give the same feed, nothing twice.
        seen: list[str] = []
        url: str | None = a.base + "/api/v1/timelines/home?limit=2"
        while url:
            status, page, link = await api_get(a, url, tok)
            assert status == 200 and len(page) <= 2
            if not page:
                break
            seen += [st["id"] for st in page]
            url = next_link(link)
        assert seen == [st["id"] for st in feed]
        # min_id: the page just above an id, newest first.
        status, newer, _ = await api_get(a, "/api/v1/timelines/home", tok,
                                         min_id=feed[-1]["id"], limit=2)
        assert [st["id"] for st in newer] == [feed[-3]["id"], feed[-2]["id"]]
        status, since, _ = await api_get(a, "/api/v1/timelines/home", tok,
                                         since_id=feed[1]["id"])
        assert [st["id"] for st in since] == [feed[0]["id"]]

        # bob follows only c1: dave's post (boosted by c1, then by c2 and c3) appears once,
        # at c1's boost; alice's post into c2 does not appear.
        bob_tok = await token(a, "bob")
        _, bob_feed, _ = await api_get(a, "/api/v1/timelines/home", bob_tok)
        assert sorted(_text(st) for st in bob_feed) == ["Grève le 5",
                                                         "Réunion de section #syndicat"]
        assert {st["account"]["acct"] for st in bob_feed} == {"c1"}

        # Scopes: a write-only token cannot read the timeline.
        w = await token(a, "alice", "write")
        status, body, _ = await api_get(a, "/api/v1/timelines/home", w)
        assert status == 403 and "error" in body
        status, _, _ = await api_get(a, "/api/v1/timelines/home")
        assert status == 401
        # Errors carry CORS headers too, or browser clients (Elk, Phanpy) cannot read them.
        async with ClientSession() as http, http.get(
            a.base + "/api/v1/timelines/home", headers={"Origin": "https://elk.zone"}
        ) as r:
            assert r.status == 401 and r.headers["Access-Control-Allow-Origin"] == "*"
            assert "Link" in r.headers["Access-Control-Expose-Headers"]

        # Public timelines: local posts only with local=true; hashtags.
        _, local, _ = await api_get(a, "/api/v1/timelines/public", local="true")
        assert sorted(_text(st) for st in local) == ["Mon premier message",
                                                     "Réunion de section #syndicat"]
        _, everything, _ = await api_get(a, "/api/v1/timelines/public")
        assert "Grève le 5" in [_text(st) for st in everything]
        _, tagged, _ = await api_get(a, "/api/v1/timelines/tag/Syndicat")
        assert [_text(st) for st in tagged] == ["Réunion de section #syndicat"]
        status, body, _ = await api_get(a, "/api/v1/timelines/home", tok, max_id="abc")
        assert status == 400 and "error" in body
    finally:
        await peer.stop()


async def _expect(value: Any, want: int) -> bool:
    return bool(await value == want)


def _text(status: dict[str, Any]) -> str:
    inner = status["reblog"] or status
    text = re.sub(r"<[^>]+>", "", inner["content"]).strip()
    return re.sub(r"^@(c\d|fed)\s*", "", text)  # posts made here start by naming their cooperative
