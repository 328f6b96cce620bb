"""Notifications through the Mastodon API, produced by real activity: a mention from another
instance, a like from a remote peer, a cooperative's redistribution (a boost of the
member's post), follow requests to a moderated cooperative, a followed account's post, an
edit of a liked post, a closed poll. Filters, pagination, dismiss, clear, unread count and
scopes are checked on the results."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.follows import follow
from t3r1_fed.context import Context
from t3r1_fed.coops.editing import publish_edit
from t3r1_fed.coops.membership import group_actor, join, user_actor
from t3r1_fed.coops.news import publish_news
from t3r1_fed.coops.polls import close_due_polls, create_poll, vote
from t3r1_fed.coops.posting import local_post
from t3r1_fed.coops.roles import set_role
from t3r1_fed.db.models import Actor, Coop, Follow, Like, Mention, Object, User, utcnow
from t3r1_fed.db.models_api import Marker, Notification
from t3r1_fed.db.models_coops import Poll
from t3r1_fed.vocab.context import AS_PUBLIC
from tests.conftest import StartInstance
from tests.integration.accounts_api_support import call, link, token
from tests.peer import Peer
from tests.testrig import Instance, eventually

pytestmark = pytest.mark.federation

LIST = "/api/v1/notifications"


async def _join(a: Instance, user: str, coop: str) -> None:
    async def go(ctx: Context, s: AsyncSession) -> None:
        await join(ctx, s, await user_actor(s, user), await group_actor(s, coop))

    await a.run(go)


async def _notes(a: Instance, tok: str, **params: Any) -> list[dict[str, Any]]:
    status, body, _ = await call(a, "GET", LIST, tok, params=params)
    assert status == 200, body
    assert isinstance(body, list)
    return body


async def test_mention_favourite_reblog_filters_pages_and_scopes(
    instances: StartInstance,
) -> None:
    a = await instances("127.0.0.2", oauth_password_grant="1")
    b = await instances("127.0.0.3")
    await a.create_user("alice")
    await a.create_user("bob")
    await a.create_coop("c1", "bob")
    await b.create_user("carol")
    await b.create_coop("fed", "carol")
    await _join(a, "alice", "c1")
    tok = await token(a, "alice", "read write")

    # 1. A member posts into a public cooperative, which redistributes it: a boost by c1.
    post = await a.run(lambda ctx, s: local_post(ctx, s, "alice", "c1", "Assemblée jeudi"))
    reblogs = await eventually(lambda: _notes(a, tok, **{"types[]": "reblog"}),
                               what="reblog notification")
    assert len(reblogs) == 1
    assert reblogs[0]["account"]["username"] == "c1"
    assert reblogs[0]["status"]["id"] == str(post.sid)
    assert reblogs[0]["group_key"].startswith(f"reblog-{post.sid}-")

    # 2. A remote member (instance b) mentions alice in a post of her own cooperative.
    async def mention(ctx: Context, s: AsyncSession) -> Object:
        carol = await user_actor(s, "carol")
        return await publish_news(ctx, s, carol, "fed", f"Salut @alice@{a.domain} !")

    await b.run(mention)
    mentions = await eventually(lambda: _notes(a, tok, **{"types[]": "mention"}),
                                what="mention notification", timeout=30)
    assert mentions[0]["type"] == "mention"
    assert mentions[0]["account"]["acct"] == f"carol@{b.domain}"
    assert "Salut" in mentions[0]["status"]["content"]
    assert any(m["acct"] == "alice" for m in mentions[0]["status"]["mentions"])

    async def mentioned_rows(ctx: Context, s: AsyncSession) -> int:
        q = select(Mention).join(Actor, Actor.id == Mention.actor_id).where(
            Actor.uri == ctx.uris.user("alice"))
        return len((await s.execute(q)).all())

    assert await a.run(mentioned_rows) == 1  # the mentions table names her

    # 3. A remote peer likes alice's post.
    peer = await Peer("127.0.0.5").start()
    try:
        await _like(a, peer, "mona", post)
        favs = await eventually(lambda: _notes(a, tok, **{"types[]": "favourite"}),
                                what="favourite notification")
        assert favs[0]["account"]["acct"] == f"mona@{peer.domain}"
        assert favs[0]["status"]["id"] == str(post.sid)
        await _check_v1(a, tok)
        await _like(a, peer, "nina", post)
        await eventually(lambda: _count(a, tok, 2, **{"types[]": "favourite"}),
                         what="second favourite")
        await _check_v2(a, tok, post, peer)
    finally:
        await peer.stop()


async def _like(a: Instance, peer: Peer, name: str, post: Object) -> None:
    actor = peer.actor(name)
    like = {"@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{peer.base}/likes/{name}", "type": "Like", "actor": actor.id,
            "object": post.uri, "to": [AS_PUBLIC]}
    assert (await actor.post(f"{a.base}/inbox", like))[0] == 202


async def _count(a: Instance, tok: str, n: int, **params: Any) -> bool:
    return len(await _notes(a, tok, **params)) == n


async def _check_v1(a: Instance, tok: str) -> None:
    # Filters: types[] (several), exclude_types[], account_id.
    every = await _notes(a, tok)
    assert [n["type"] for n in every] == ["favourite", "mention", "reblog"]
    two = await _notes(a, tok, **{"types[]": ["favourite", "reblog"]})
    assert [n["type"] for n in two] == ["favourite", "reblog"]
    status, body, _ = await call(a, "GET", LIST + "?types[]=favourite&types[]=reblog", tok)
    assert [n["type"] for n in body] == ["favourite", "reblog"]
    assert [n["type"] for n in await _notes(a, tok, **{"exclude_types[]": "mention"})] == [
        "favourite", "reblog"]
    assert await _notes(a, tok, **{"types[]": "nonsense"}) == []
    by_c1 = await _notes(a, tok, account_id=every[2]["account"]["id"])
    assert [n["type"] for n in by_c1] == ["reblog"]
    assert await _notes(a, tok, account_id="abc") == []
    assert await _notes(a, tok, account_id="99999999999999999999999") == []

    # Pagination: one per page, the Link header walks down and back up.
    status, page1, hdr = await call(a, "GET", LIST + "?limit=1", tok)
    assert [n["id"] for n in page1] == [every[0]["id"]]
    nxt = link(hdr, "next")
    assert nxt is not None and f"max_id={every[0]['id']}" in nxt and "limit=1" in nxt
    status, page2, hdr2 = await call(a, "GET", nxt, tok)
    assert [n["id"] for n in page2] == [every[1]["id"]]
    prev = link(hdr2, "prev")
    assert prev is not None
    status, back, _ = await call(a, "GET", prev, tok)
    assert [n["id"] for n in back] == [every[0]["id"]]
    assert [n["id"] for n in await _notes(a, tok, since_id=every[2]["id"])] == [
        every[0]["id"], every[1]["id"]]

    # One notification; unread count with and without a marker.
    status, one, _ = await call(a, "GET", f"{LIST}/{every[1]['id']}", tok)
    assert status == 200 and one["type"] == "mention"
    status, count, _ = await call(a, "GET", LIST + "/unread_count", tok)
    assert status == 200 and count == {"count": 3}

    async def mark(ctx: Context, s: AsyncSession) -> None:
        alice = await user_actor(s, "alice")
        uid = (await s.execute(select(User.id).where(User.actor_id == alice.id))).scalar_one()
        s.add(Marker(user_id=uid, timeline="notifications", last_read_id=every[1]["id"]))

    await a.run(mark)
    status, count, _ = await call(a, "GET", LIST + "/unread_count", tok)
    assert count == {"count": 1}
    status, count, _ = await call(a, "GET", LIST + "/unread_count?limit=1", tok)
    assert count == {"count": 1}

    # Scopes: read:statuses alone may not read them; read-only may not dismiss.
    narrow = await token(a, "alice", "read:statuses")
    status, body, _ = await call(a, "GET", LIST, narrow)
    assert status == 403 and "error" in body
    status, body, _ = await call(a, "GET", LIST + "/unread_count", narrow)
    assert status == 403
    reader = await token(a, "alice", "read:notifications")
    assert len(await _notes(a, reader)) == 3
    status, body, _ = await call(a, "POST", f"{LIST}/{every[0]['id']}/dismiss", reader)
    assert status == 403
    status, body, _ = await call(a, "GET", LIST)
    assert status == 401

    # Nobody else sees alice's notifications.
    bob = await token(a, "bob", "read write")
    assert await _notes(a, bob) == []
    status, body, _ = await call(a, "GET", f"{LIST}/{every[0]['id']}", bob)
    assert status == 404 and body == {"error": "Record not found"}
    status, body, _ = await call(a, "POST", f"{LIST}/{every[0]['id']}/dismiss", bob)
    assert status == 404


async def _check_v2(a: Instance, tok: str, post: Object, peer: Peer) -> None:
    """Grouped notifications: the two favourites of one post are one group."""
    v1 = await _notes(a, tok)
    assert [n["type"] for n in v1] == ["favourite", "favourite", "mention", "reblog"]
    fav_key = v1[0]["group_key"]
    assert v1[1]["group_key"] == fav_key and fav_key.startswith(f"favourite-{post.sid}-")
    assert v1[2]["group_key"] == f"ungrouped-{v1[2]['id']}"
    status, body, hdr = await call(a, "GET", "/api/v2/notifications", tok)
    assert status == 200, body
    groups = body["notification_groups"]
    assert [g["type"] for g in groups] == ["favourite", "mention", "reblog"]
    fav = groups[0]
    assert fav["group_key"] == fav_key and fav["notifications_count"] == 2
    assert fav["most_recent_notification_id"] == v1[0]["id"]
    assert fav["page_min_id"] == v1[1]["id"] and fav["page_max_id"] == v1[0]["id"]
    assert fav["status_id"] == str(post.sid)
    by_id = {acc["id"]: acc for acc in body["accounts"]}
    assert [by_id[i]["acct"] for i in fav["sample_account_ids"]] == [
        f"nina@{peer.domain}", f"mona@{peer.domain}"]
    assert groups[1]["group_key"] == v1[2]["group_key"]
    assert {st["id"] for st in body["statuses"]} == {str(post.sid), groups[1]["status_id"]}
    assert link(hdr, "next") is not None
    # grouped_types without favourite: each favourite is a group of its own.
    status, body, _ = await call(a, "GET", "/api/v2/notifications?grouped_types[]=follow", tok)
    assert len(body["notification_groups"]) == 4
    status, body, hdr = await call(a, "GET", "/api/v2/notifications?limit=1", tok)
    assert [g["group_key"] for g in body["notification_groups"]] == [fav_key]
    nxt = link(hdr, "next")
    assert nxt is not None
    # As Mastodon: the next page starts below the group's newest row, so the group's older
    # part is shown again there (clients merge groups by key).
    status, body, hdr = await call(a, "GET", nxt, tok)
    again = body["notification_groups"]
    assert [(g["group_key"], g["page_max_id"], g["notifications_count"]) for g in again] == [
        (fav_key, v1[1]["id"], 1)]
    nxt = link(hdr, "next")
    assert nxt is not None
    status, body, _ = await call(a, "GET", nxt, tok)
    assert [g["type"] for g in body["notification_groups"]] == ["mention"]
    status, one, _ = await call(a, "GET", f"/api/v2/notifications/{fav_key}", tok)
    assert status == 200 and one["notification_groups"][0]["notifications_count"] == 2
    status, accs, _ = await call(a, "GET", f"/api/v2/notifications/{fav_key}/accounts", tok)
    assert [x["acct"] for x in accs] == [f"nina@{peer.domain}", f"mona@{peer.domain}"]
    status, body, _ = await call(a, "GET", "/api/v2/notifications/favourite-1-5", tok)
    assert status == 404
    # Unread (the marker is on the mention): 2 notifications, 1 group.
    status, count, _ = await call(a, "GET", LIST + "/unread_count", tok)
    assert count == {"count": 2}
    status, count, _ = await call(a, "GET", "/api/v2/notifications/unread_count", tok)
    assert count == {"count": 1}
    status, body, _ = await call(a, "POST", f"/api/v2/notifications/{fav_key}/dismiss", tok)
    assert status == 200 and body == {}
    assert [n["type"] for n in await _notes(a, tok)] == ["mention", "reblog"]
    every = await _notes(a, tok)
    bob = await token(a, "bob", "read write")
    status, body, _ = await call(a, "GET", f"/api/v2/notifications/{every[0]['group_key']}",
                                 bob)
    assert status == 404

    # Dismiss one, then clear the rest.
    status, body, _ = await call(a, "POST", f"{LIST}/{every[0]['id']}/dismiss", tok)
    assert status == 200 and body == {}
    status, body, _ = await call(a, "GET", f"{LIST}/{every[0]['id']}", tok)
    assert status == 404
    assert [n["id"] for n in await _notes(a, tok)] == [every[1]["id"]]
    status, body, _ = await call(a, "POST", LIST + "/clear", tok)
    assert status == 200 and body == {}
    assert await _notes(a, tok) == []


async def test_follow_requests_statuses_updates_and_deletions(instances: StartInstance) -> None:
    a = await instances("127.0.0.2", oauth_password_grant="1")
    for name in ("alice", "bob", "dave", "erin"):
        await a.create_user(name)
    await a.create_coop("syndicat", "bob", openness="moderated")
    await a.create_coop("secret", "alice", private=True)
    await a.create_coop("c1", "bob")
    await _join(a, "alice", "c1")

    async def moderator(ctx: Context, s: AsyncSession) -> None:
        await set_role(ctx, s, await user_actor(s, "bob"), await group_actor(s, "syndicat"),
                       await user_actor(s, "erin"), "moderator")

    await a.run(moderator)
    await _join(a, "dave", "syndicat")  # pending: a follow request to the moderators
    bob, erin, dave = [await token(a, n, "read write") for n in ("bob", "erin", "dave")]
    for tok in (bob, erin):
        reqs = await _notes(a, tok)
        assert [n["type"] for n in reqs] == ["follow_request"]
        assert reqs[0]["account"]["username"] == "dave"
        assert "status" not in reqs[0]
    assert await _notes(a, dave) == []  # never about one's own request

    async def group_ids(ctx: Context, s: AsyncSession) -> set[int | None]:
        rows = await s.execute(select(Notification.group_id))
        return set(rows.scalars())

    syndicat_id = await a.run(lambda ctx, s: group_actor(s, "syndicat"))
    assert await a.run(group_ids) == {syndicat_id.id}

    # Accepting the request makes the notification go (as Mastodon's follow request).
    async def accept(ctx: Context, s: AsyncSession) -> None:
        await s.execute(update(Follow).where(Follow.followee_id == syndicat_id.id)
                        .values(state="accepted"))

    await a.run(accept)
    assert await _notes(a, bob) == []

    # dave follows alice with the bell: alice is told, dave gets `status` for her posts,
    # but not for her posts in a private cooperative he does not belong to.
    async def bell(ctx: Context, s: AsyncSession) -> None:
        f = await follow(ctx, s, "dave", f"alice@{a.domain}")
        f.notify = True

    await a.run(bell)
    alice = await token(a, "alice", "read write")
    assert [n["type"] for n in await _notes(a, alice)] == ["follow"]
    secret = await a.run(lambda ctx, s: local_post(ctx, s, "alice", "secret", "Entre nous"))
    public = await a.run(lambda ctx, s: local_post(ctx, s, "alice", "c1", "Pour tous"))
    statuses = await _notes(a, dave, **{"types[]": "status"})
    assert [n["status"]["id"] for n in statuses] == [str(public.sid)]

    async def rows_about(ctx: Context, s: AsyncSession) -> int:
        q = select(Notification).where(Notification.object_id == secret.id,
                                       Notification.type == "status")
        return len((await s.execute(q)).all())

    assert await a.run(rows_about) == 0

    # dave likes her post (the row as the favourite endpoint would write it), then she
    # edits it: he is told of the edit; a like of one's own post notifies nobody.
    async def likes(ctx: Context, s: AsyncSession) -> None:
        for name in ("dave", "alice"):
            me = await user_actor(s, name)
            s.add(Like(uri=ctx.uris.activity(), actor_id=me.id, object_id=public.id))

    await a.run(likes)
    favs = await _notes(a, alice, **{"types[]": "favourite"})
    assert [n["account"]["username"] for n in favs] == ["dave"]

    async def edit(ctx: Context, s: AsyncSession) -> None:
        row = await s.get(Object, public.id)
        assert row is not None
        await publish_edit(ctx, s, await user_actor(s, "alice"), row,
                           {"content": "<p>Pour tous, corrigé</p>"})

    await a.run(edit)
    updates = await _notes(a, dave, **{"types[]": "update"})
    assert len(updates) == 1 and "corrigé" in updates[0]["status"]["content"]
    assert await _notes(a, alice, **{"types[]": "update"}) == []

    # A deleted post takes its notifications with it.
    async def delete_post(ctx: Context, s: AsyncSession) -> None:
        await s.execute(update(Object).where(Object.id == public.id)
                        .values(deleted_at=utcnow(), content=None))

    await a.run(delete_post)
    assert await _notes(a, dave) == []
    left = await _notes(a, alice)  # the boost of the other post by its cooperative stays
    assert [(n["type"], n.get("status", {}).get("id")) for n in left] == [
        ("reblog", str(secret.sid)), ("follow", None)]


async def test_closed_poll_notifies_voters_and_author(instances: StartInstance) -> None:
    a = await instances("127.0.0.2", oauth_password_grant="1")
    for name in ("alice", "dave"):
        await a.create_user(name)
    await a.create_coop("c1", "alice")
    await _join(a, "dave", "c1")

    async def poll(ctx: Context, s: AsyncSession) -> Object:
        group = await group_actor(s, "c1")
        coop = (await s.execute(select(Coop).where(Coop.actor_id == group.id))).scalar_one()
        obj = await create_poll(ctx, s, await user_actor(s, "alice"), group, coop,
                                question="Grève ?", options=["Oui", "Non"],
                                closes_at=utcnow() + timedelta(hours=1))
        await vote(ctx, s, await user_actor(s, "dave"), obj, ["Oui"])
        return obj

    obj = await a.run(poll)
    dave, alice = await token(a, "dave", "read"), await token(a, "alice", "read")
    assert await _notes(a, dave, **{"types[]": "poll"}) == []

    async def close(ctx: Context, s: AsyncSession) -> int:
        await s.execute(update(Poll).where(Poll.object_id == obj.id)
                        .values(closes_at=utcnow() - timedelta(seconds=1)))
        return await close_due_polls(ctx, s)

    await a.run(close)  # the maintenance pass may have closed it first: either way, once
    for tok in (dave, alice):
        got = await _notes(a, tok, **{"types[]": "poll"})
        assert len(got) == 1 and got[0]["status"]["id"] == str(obj.sid)
        assert got[0]["account"]["username"] == "alice"
        assert got[0]["status"]["poll"]["expired"] is True


async def test_remote_post_and_edit_keep_mentions_in_step(instances: StartInstance) -> None:
    """A remote post mentioning alice and its author: both rows in `mentions` (the author
    is a known remote actor); an edit that mentions bob instead moves the rows and tells
    bob, and alice keeps her notification; liking it first makes alice hear of the edit."""
    a = await instances("127.0.0.2", oauth_password_grant="1")
    await a.create_user("alice")
    await a.create_user("bob")
    alice_uri, bob_uri = a.ctx.uris.user("alice"), a.ctx.uris.user("bob")
    alice, bob = await token(a, "alice", "read"), await token(a, "bob", "read")
    peer = await Peer("127.0.0.5").start()
    try:
        mona = peer.actor("mona")

        def tag(href: str, name: str) -> dict[str, str]:
            return {"type": "Mention", "href": href, "name": name}

        note = peer.note(mona, "Salut Alice", to=[AS_PUBLIC], cc=[alice_uri],
                         tag=[tag(alice_uri, "@alice"), tag(mona.id, "@mona"),
                              tag("https://unknown.example/u/x", "@x")])
        body = {k: v for k, v in note.items() if k != "@context"}
        create = {"@context": "https://www.w3.org/ns/activitystreams",
                  "id": note["id"] + "/create", "type": "Create", "actor": mona.id,
                  "object": body, "to": note["to"], "cc": note["cc"]}
        assert (await mona.post(f"{a.base}/inbox", create))[0] == 202
        got = await eventually(lambda: _notes(a, alice), what="mention")
        assert [n["type"] for n in got] == ["mention"]

        async def mentioned(ctx: Context, s: AsyncSession) -> set[str]:
            rows = await s.execute(
                select(Actor.uri).join(Mention, Mention.actor_id == Actor.id)
                .join(Object, Object.id == Mention.object_id).where(Object.uri == note["id"]))
            return set(rows.scalars())

        assert await a.run(mentioned) == {alice_uri, mona.id}

        async def alice_likes(ctx: Context, s: AsyncSession) -> None:
            me = await user_actor(s, "alice")
            obj = (await s.execute(select(Object).where(Object.uri == note["id"]))).scalar_one()
            s.add(Like(uri=ctx.uris.activity(), actor_id=me.id, object_id=obj.id))

        await a.run(alice_likes)
        edited = dict(body, content="<p>Salut Bob</p>", cc=[bob_uri],
                      tag=[tag(bob_uri, "@bob"), tag(mona.id, "@mona")],
                      updated="2026-11-28T12:05:00Z")
        update_act = {"@context": "https://www.w3.org/ns/activitystreams",
                      "id": note["id"] + "/update", "type": "Update", "actor": mona.id,
                      "object": edited, "to": note["to"], "cc": [bob_uri]}
        peer.objects[note["id"]] = dict(edited, **{"@context": note["@context"]})
        assert (await mona.post(f"{a.base}/inbox", update_act))[0] == 202
        got = await eventually(lambda: _notes(a, bob), what="mention added by the edit")
        assert [n["type"] for n in got] == ["mention"] and "Bob" in got[0]["status"]["content"]
        assert await a.run(mentioned) == {bob_uri, mona.id}
        assert [n["type"] for n in await _notes(a, alice)] == ["update", "mention"]
    finally:
        await peer.stop()
