"""A Mastodon-like remote user joins a cooperative and posts into it by mentioning it."""

from __future__ import annotations

import pytest
from aiohttp import ClientSession
from sqlalchemy import select

from t3r1_fed.db.models import Object
from t3r1_fed.vocab.context import AS_PUBLIC
from tests.conftest import StartInstance
from tests.peer import Peer, wait_received

pytestmark = pytest.mark.federation


async def test_remote_follow_and_mention_post_is_redistributed(instances: StartInstance) -> None:
    a = await instances("127.0.0.2")
    await a.create_user("alice")
    coop = await a.create_coop("syndicat", "alice")
    peer = await Peer("127.0.0.5").start()
    try:
        mona = peer.actor("mona")
        status, _ = await mona.post(f"{a.base}/inbox", {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{peer.base}/follows/1", "type": "Follow", "actor": mona.id, "object": coop,
        })
        assert status == 202
        accept = (await wait_received(peer, 1, "Accept"))[0]
        assert accept["actor"] == coop
        assert accept["object"]["id"] == f"{peer.base}/follows/1"

        note = peer.note(mona, "Grève le 5 !", to=[AS_PUBLIC], cc=[coop],
                         tag=[{"type": "Mention", "href": coop, "name": f"@syndicat@{a.domain}"}])
        create = {"@context": "https://www.w3.org/ns/activitystreams",
                  "id": note["id"] + "/activity", "type": "Create", "actor": mona.id,
                  "object": {k: v for k, v in note.items() if k != "@context"},
                  "to": note["to"], "cc": note["cc"]}
        assert (await mona.post(f"{a.base}/c/syndicat/inbox", create))[0] == 202
        announces = await wait_received(peer, 2, "Announce")
        by_form = {isinstance(x["object"], dict): x for x in announces}
        assert by_form[True]["object"]["id"] == create["id"]  # FEP-1b12 Announce(activity)
        boost = by_form[False]  # Mastodon-style boost of the object id
        assert boost["object"] == note["id"]
        assert boost["to"] == [AS_PUBLIC] and boost["cc"] == [f"{coop}/followers"]
        async with a.session() as s:
            obj = (await s.execute(select(Object).where(Object.uri == note["id"]))).scalar_one()
            assert obj.group_id is not None and "Grève le 5 !" in (obj.content or "")
    finally:
        await peer.stop()


async def test_followers_pages_show_only_the_signed_requesters_own_actors(
    instances: StartInstance,
) -> None:
    a = await instances("127.0.0.2")
    await a.create_user("alice")
    coop = await a.create_coop("syndicat", "alice")
    peer = await Peer("127.0.0.5").start()
    other = await Peer("127.0.0.6").start()
    try:
        for p, name in ((peer, "mona"), (other, "otto")):
            actor = p.actor(name)
            follow = {"@context": "https://www.w3.org/ns/activitystreams",
                      "id": f"{p.base}/follows/{name}", "type": "Follow", "actor": actor.id,
                      "object": coop}
            assert (await actor.post(f"{a.base}/inbox", follow))[0] == 202
            await wait_received(p, 1, "Accept")
        url = f"{coop}/followers"
        async with ClientSession() as http:
            async with http.get(url, headers={"Accept": "application/activity+json"}) as r:
                coll = await r.json(content_type=None)
            assert coll["type"] == "OrderedCollection" and coll["totalItems"] == 2
            page_url = coll["first"]
            async with http.get(page_url, headers={"Accept": "application/activity+json"}) as r:
                assert (await r.json(content_type=None))["orderedItems"] == []  # anonymous
            mona = peer.actors["mona"]
            headers = mona.signed("GET", page_url)
            async with http.get(page_url, headers=headers) as r:
                page = await r.json(content_type=None)
            assert page["type"] == "OrderedCollectionPage"
            assert page["orderedItems"] == [mona.id]  # not otto, who is on another host
    finally:
        await peer.stop()
        await other.stop()
