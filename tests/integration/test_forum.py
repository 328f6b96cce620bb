"""Forum discussions and news posts across real instances and a Mastodon/Lemmy-like peer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import ClientSession
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.follows import follow
from t3r1_fed.context import Context
from t3r1_fed.coops.forum import ForumError, reply, start_thread
from t3r1_fed.coops.membership import approve
from t3r1_fed.coops.news import member_actor, publish_news
from t3r1_fed.db.models import Activity, Actor, Follow, InboxItem, Object, utcnow
from t3r1_fed.db.models_coops import ObjectTag
from t3r1_fed.vocab.context import AS_PUBLIC
from tests.conftest import StartInstance
from tests.peer import CONTEXT, Peer, PeerActor, wait_received
from tests.testrig import Instance, eventually

pytestmark = pytest.mark.federation
AS2 = {"Accept": "application/activity+json"}


async def stored(inst: Instance, uri: str) -> Object | None:
    async with inst.session() as s:
        return (await s.execute(select(Object).where(Object.uri == uri))).scalar()


async def tags_of(inst: Instance, uri: str) -> list[str]:
    async with inst.session() as s:
        q = select(ObjectTag.tag).join(Object, Object.id == ObjectTag.object_id)
        return sorted((await s.execute(q.where(Object.uri == uri))).scalars())


async def has_tags(inst: Instance, uri: str, expected: list[str]) -> None:
    # On SQLite a SAVEPOINT release may commit the object row a moment before its hooks'
    # rows (pysqlite's legacy transaction control), so wait for the tags.
    async def check() -> bool:
        return await tags_of(inst, uri) == expected

    await eventually(check, what=f"tags {expected} of {uri}")


async def get_json(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with ClientSession() as http, http.get(url, headers=headers or AS2) as r:
        return r.status, await r.json(content_type=None)


async def collection_items(url: str) -> list[str]:
    status, coll = await get_json(url)
    assert status == 200, coll
    assert coll["type"] == "OrderedCollection"
    _, page = await get_json(coll["first"])
    assert page["type"] == "OrderedCollectionPage" and page["partOf"] == url
    return list(page["orderedItems"])


async def joined(inst: Instance, username: str, group: str) -> bool:
    async with inst.session() as s:
        q = (select(Follow.state).join(Actor, Actor.id == Follow.follower_id)
             .where(Actor.uri == inst.ctx.uris.user(username)))
        return (await s.execute(q)).scalar() == "accepted"


async def peer_follows(actor: PeerActor, coop: str, inbox: str) -> None:
    follow_ = {"@context": CONTEXT, "id": f"{actor.id}/follows/1", "type": "Follow",
               "actor": actor.id, "object": coop}
    assert (await actor.post(inbox, follow_))[0] == 202
    await wait_received(actor.peer, 1, "Accept")


def create_of(note: dict[str, Any]) -> dict[str, Any]:
    return {"@context": CONTEXT, "id": note["id"] + "/activity", "type": "Create",
            "actor": note["attributedTo"], "object": {k: v for k, v in note.items()
                                                      if k != "@context"},
            "to": note["to"], "cc": note.get("cc", [])}


def boosts_of(peer: Peer, uri: str) -> list[dict[str, Any]]:
    return [a for a in peer.activities("Announce") if a["object"] == uri]


def announced_creates_of(peer: Peer, uri: str) -> list[dict[str, Any]]:
    return [a for a in peer.activities("Announce") if isinstance(a["object"], dict)
            and a["object"].get("type") == "Create" and a["object"]["object"]["id"] == uri]


async def test_thread_replies_across_instances(instances: StartInstance) -> None:
    a = await instances("127.0.0.2")
    b = await instances("127.0.0.3")
    await a.create_user("alice")
    coop = await a.create_coop("syndicat", "alice")
    await b.create_user("bob")
    peer = await Peer("127.0.0.5").start()
    try:
        mona = peer.actor("mona")
        await peer_follows(mona, coop, f"{a.base}/inbox")

        async def bob_joins(ctx: Context, s: AsyncSession) -> None:
            await follow(ctx, s, "bob", f"syndicat@{a.domain}")

        await b.run(bob_joins)
        await eventually(lambda: joined(b, "bob", coop), what="bob accepted")

        async def open_thread(ctx: Context, s: AsyncSession) -> Object:
            alice = await member_actor(s, "alice")
            return await start_thread(ctx, s, alice, "syndicat", "Plateforme revendicative",
                                      "Vos **propositions** pour la #NAO ici.")

        root = await a.run(open_thread)
        context = f"{coop}/discussions/{root.uri.rsplit('/', 1)[1]}"
        assert root.context == context and root.kind == "thread"

        # B receives it as a thread: a Page with its name and the group's context.
        on_b = await eventually(lambda: stored(b, root.uri), what="thread on B")
        assert (on_b.type, on_b.kind, on_b.name) == ("Page", "thread", "Plateforme revendicative")
        assert on_b.context == context and on_b.group_id is not None
        assert "<strong>propositions</strong>" in (on_b.content or "")
        source = json.loads(on_b.raw)["source"]  # the Markdown typed, as Lemmy publishes it
        assert source == {"content": "Vos **propositions** pour la #NAO ici.",
                          "mediaType": "text/markdown"}
        await has_tags(b, root.uri, ["nao"])
        # Mastodon followers see the top-level post boosted.
        await eventually(lambda: _truthy(boosts_of(peer, root.uri)), what="boost of root")

        # bob (on B) replies into A's thread: a Create to the group, which files it.
        async def bob_replies(ctx: Context, s: AsyncSession) -> str:
            bob = await member_actor(s, "bob")
            return (await reply(ctx, s, bob, root.uri, "Augmentation de 5 %")).uri

        reply_uri = await b.run(bob_replies)
        on_a = await eventually(lambda: _filed(a, reply_uri), what="reply filed on A")
        assert on_a.kind == "reply" and on_a.context == context
        async with a.session() as s:
            assert on_a.thread_id == (await s.execute(
                select(Object.id).where(Object.uri == root.uri))).scalar_one()
        # Redistributed as Announce(activity) only: never boosted to Mastodon.
        await eventually(lambda: _truthy(announced_creates_of(peer, reply_uri)),
                         what="Announce(Create reply)")
        assert boosts_of(peer, reply_uri) == []

        # The context collection (owned by the group) and the discussions collection.
        status, coll = await get_json(context)
        assert status == 200 and coll["attributedTo"] == coop and coll["totalItems"] == 2
        assert await collection_items(context) == [root.uri, reply_uri]
        assert await collection_items(f"{coop}/discussions") == [root.uri]
        _, group_doc = await get_json(coop)
        assert group_doc["discussions"] == f"{coop}/discussions"

        # A locked thread takes no new reply: locally refused, remotely not filed.
        async def lock(ctx: Context, s: AsyncSession) -> None:
            row = (await s.execute(select(Object).where(Object.uri == root.uri))).scalar_one()
            row.locked_at = utcnow()

        await a.run(lock)

        async def alice_replies(ctx: Context, s: AsyncSession) -> None:
            await reply(ctx, s, await member_actor(s, "alice"), root.uri, "trop tard")

        with pytest.raises(ForumError, match="locked"):
            await a.run(alice_replies)
        late = await b.run(bob_replies)
        await eventually(lambda: _rejected(a, coop), what="A rejected the late reply")
        late_on_a = await stored(a, late)
        assert late_on_a is not None and late_on_a.group_id is None
        assert await collection_items(context) == [root.uri, reply_uri]
    finally:
        await peer.stop()


async def _filed(inst: Instance, uri: str) -> Object | None:
    obj = await stored(inst, uri)
    return obj if obj is not None and obj.group_id is not None else None


async def _processed(inst: Instance, activity_id: str) -> bool:
    async with inst.session() as s:
        q = select(InboxItem.state).where(InboxItem.activity_uri == activity_id)
        return (await s.execute(q)).scalar() in ("done", "ignored")


async def _pending(inst: Instance, actor_uri: str) -> bool:
    async with inst.session() as s:
        q = (select(Follow.state).join(Actor, Actor.id == Follow.follower_id)
             .where(Actor.uri == actor_uri))
        return (await s.execute(q)).scalar() == "pending"


async def _rejected(inst: Instance, group: str) -> bool:
    async with inst.session() as s:
        q = (select(Activity.body).join(Actor, Actor.id == Activity.actor_id)
             .where(Actor.uri == group, Activity.type == "Reject"))
        return any("locked" in body for body in (await s.execute(q)).scalars())


async def _threaded(inst: Instance, uri: str) -> Object | None:
    obj = await stored(inst, uri)
    return obj if obj is not None and obj.thread_id is not None else None


async def _truthy(value: Any) -> Any:
    return value


async def test_mastodon_reply_attached_by_walking_in_reply_to(instances: StartInstance) -> None:
    a = await instances("127.0.0.2")
    await a.create_user("alice")
    coop = await a.create_coop("syndicat", "alice")
    peer = await Peer("127.0.0.5").start()
    try:
        mona = peer.actor("mona")
        await peer_follows(mona, coop, f"{a.base}/inbox")

        async def open_thread(ctx: Context, s: AsyncSession) -> Object:
            alice = await member_actor(s, "alice")
            return await start_thread(ctx, s, alice, "syndicat", "Grève du 5", "On y va ?")

        root = await a.run(open_thread)

        async def newer_thread(ctx: Context, s: AsyncSession) -> Object:
            alice = await member_actor(s, "alice")
            return await start_thread(ctx, s, alice, "syndicat", "Tract", "Relisez-le")

        newer = await a.run(newer_thread)
        discussions = f"{coop}/discussions"
        assert await collection_items(discussions) == [newer.uri, root.uri]
        alice_uri = a.ctx.uris.user("alice")
        # mona's first reply never reached A (only her server has it) …
        first = peer.note(mona, "Oui !", to=[AS_PUBLIC], cc=[alice_uri], in_reply_to=root.uri)
        # … her reply to it, as Mastodon addresses it: not to the group.
        second = peer.note(mona, "Et on bloque le dépôt", to=[AS_PUBLIC],
                           cc=[f"{mona.id}/followers", alice_uri], in_reply_to=first["id"],
                           tag=[{"type": "Mention", "href": alice_uri, "name": "@alice"}])
        assert (await mona.post(f"{a.base}/inbox", create_of(second)))[0] == 202

        on_a = await eventually(lambda: _filed(a, second["id"]), what="reply attached")
        fetched = await stored(a, first["id"])  # the missing parent, fetched from origin
        assert fetched is not None and fetched.group_id == on_a.group_id
        async with a.session() as s:
            root_id = (await s.execute(
                select(Object.id).where(Object.uri == root.uri))).scalar_one()
        assert on_a.thread_id == root_id and fetched.thread_id == root_id
        assert await collection_items(root.context or "") == [root.uri, first["id"], second["id"]]
        await eventually(lambda: _truthy(announced_creates_of(peer, second["id"])),
                         what="reply redistributed as Announce(activity)")
        assert boosts_of(peer, second["id"]) == []
        # A reply bumps its discussion to the top.
        assert await collection_items(discussions) == [root.uri, newer.uri]

        # A reply sent to nobody here makes us fetch nothing, so it joins no thread.
        aside = peer.note(mona, "Hors sujet", to=[AS_PUBLIC], in_reply_to=root.uri)
        stray = peer.note(mona, "Toujours hors sujet", to=[AS_PUBLIC],
                          cc=[f"{mona.id}/followers"], in_reply_to=aside["id"])
        assert (await mona.post(f"{a.base}/inbox", create_of(stray)))[0] == 202
        await eventually(lambda: _processed(a, stray["id"] + "/activity"), what="stray done")
        assert await stored(a, aside["id"]) is None and await stored(a, stray["id"]) is None
    finally:
        await peer.stop()


async def test_news_hashtags_mentions_cw_language(instances: StartInstance) -> None:
    a = await instances("127.0.0.2")
    b = await instances("127.0.0.3")
    await a.create_user("alice")
    coop = await a.create_coop("syndicat", "alice")
    await b.create_user("bob")
    peer = await Peer("127.0.0.5").start()
    try:
        mona = peer.actor("mona")

        async def bob_joins(ctx: Context, s: AsyncSession) -> None:
            await follow(ctx, s, "bob", f"syndicat@{a.domain}")

        await b.run(bob_joins)
        await eventually(lambda: joined(b, "bob", coop), what="bob accepted")

        async def post(ctx: Context, s: AsyncSession) -> Object:
            return await publish_news(
                ctx, s, await member_actor(s, "alice"), "syndicat",
                f"Grève des #Transports, merci @mona@{peer.domain} !",
                title="Mobilisation", summary="politique", language="fr")

        news = await a.run(post)
        assert news.type == "Article" and news.kind == "post"
        # The mentioned (non-member) actor receives the author's Create, addressed in cc.
        create = (await wait_received(peer, 1, "Create"))[0]
        obj = create["object"]
        assert obj["id"] == news.uri and mona.id in obj["cc"]
        assert {"type": "Mention", "href": mona.id, "name": f"@mona@{peer.domain}"} in obj["tag"]
        assert {"type": "Hashtag", "href": f"{a.base}/tags/transports",
                "name": "#transports"} in obj["tag"]
        assert obj["summary"] == "politique" and obj["sensitive"] is True
        assert obj["contentMap"] == {"fr": obj["content"]}
        assert f'href="{mona.id}"' in obj["content"]

        on_b = await eventually(lambda: stored(b, news.uri), what="news on B")
        assert (on_b.type, on_b.name, on_b.kind) == ("Article", "Mobilisation", "post")
        assert (on_b.summary, on_b.sensitive, on_b.language) == ("politique", True, "fr")
        await has_tags(b, news.uri, ["transports"])
        await has_tags(a, news.uri, ["transports"])
        assert await collection_items(f"{a.base}/tags/transports") == [news.uri]
        status, coll = await get_json(f"{a.base}/tags/Transports")  # case-insensitive
        assert status == 200 and coll["id"] == f"{a.base}/tags/transports"
        async with ClientSession() as http, http.get(
                f"{a.base}/tags/transports", headers={"Accept": "text/html"}) as r:
            assert r.status == 200 and r.content_type == "text/html"
            assert news.uri in await r.text()  # what a click on the hashtag in Mastodon opens
    finally:
        await peer.stop()


async def test_lemmy_nodebb_discourse_shapes(instances: StartInstance) -> None:
    a = await instances("127.0.0.2")
    b = await instances("127.0.0.3")
    await a.create_user("alice")
    coop = await a.create_coop("syndicat", "alice")
    await b.create_user("bob")
    peer = await Peer("127.0.0.5").start()
    try:
        community = peer.actor("tenforward", type_="Group")
        picard = peer.actor("picard")

        # bob follows a Lemmy community, which accepts.
        async def bob_follows(ctx: Context, s: AsyncSession) -> None:
            await follow(ctx, s, "bob", community.id)

        await b.run(bob_follows)
        fol = (await wait_received(peer, 1, "Follow"))[0]
        accept = {"@context": CONTEXT, "id": f"{community.id}/accept/1", "type": "Accept",
                  "actor": community.id, "object": fol}
        assert (await community.post(f"{b.base}/inbox", accept))[0] == 202
        await eventually(lambda: joined(b, "bob", community.id), what="community accepted")

        page_id, comment_id = f"{peer.base}/objects/post1", f"{peer.base}/objects/comment1"
        page = {"@context": CONTEXT, "id": page_id, "type": "Page", "attributedTo": picard.id,
                "to": [community.id, AS_PUBLIC], "audience": community.id,
                "name": "Post title", "content": "<p>body</p>", "mediaType": "text/html",
                "source": {"content": "body", "mediaType": "text/markdown"},
                "sensitive": False, "language": {"identifier": "fr", "name": "Français"},
                "tag": [{"type": "Hashtag", "href": f"{peer.base}/t/lemmy", "name": "#Lemmy"}],
                "context": f"{page_id}/context", "published": "2026-11-28T12:00:00Z"}
        comment = {"@context": CONTEXT, "id": comment_id, "type": "Note",
                   "attributedTo": picard.id, "to": [community.id, AS_PUBLIC],
                   "audience": community.id, "inReplyTo": page_id,
                   "content": "<p>first comment!</p>", "published": "2026-11-28T12:01:00Z"}
        peer.objects.update({page_id: page, comment_id: comment})
        for n, obj in enumerate((page, comment)):  # FEP-1b12: the community announces
            announce = {"@context": CONTEXT, "id": f"{community.id}/announce/{n}",
                        "type": "Announce", "actor": community.id, "to": [AS_PUBLIC],
                        "cc": [f"{community.id}/followers"], "object": create_of(obj)}
            assert (await community.post(f"{b.base}/inbox", announce))[0] == 202
        thread = await eventually(lambda: stored(b, page_id), what="Lemmy page on B")
        assert (thread.kind, thread.name, thread.language) == ("thread", "Post title", "fr")
        await has_tags(b, page_id, ["lemmy"])
        comment_row = await eventually(lambda: _threaded(b, comment_id), what="comment on B")
        assert comment_row.kind == "reply" and comment_row.thread_id == thread.id

        # NodeBB topic (Article) and Discourse topic (Note with a name) posted into A's coop.
        author = peer.actor("forumuser")
        nodebb = {"@context": CONTEXT, "id": f"{peer.base}/objects/topic1", "type": "Article",
                  "attributedTo": author.id, "to": [AS_PUBLIC, coop], "audience": coop,
                  "name": "Welcome", "content": "<h3>Hi</h3><p>text</p>",
                  "context": f"{peer.base}/topic/1", "inReplyTo": None,
                  "published": "2026-11-28T12:00:00Z"}
        discourse = {"@context": "https://www.w3.org/ns/activitystreams",
                     "id": f"{peer.base}/objects/d1", "type": "Note", "audience": coop,
                     "attributedTo": author.id, "name": "Our next meeting",
                     "to": [AS_PUBLIC], "cc": [coop],
                     "context": f"{peer.base}/ap/collection/1", "content": "<p>Minutes</p>",
                     "published": "2026-11-28T12:00:00Z"}
        for doc in (nodebb, discourse):
            assert (await author.post(f"{a.base}/inbox", create_of(doc)))[0] == 202
        for doc in (nodebb, discourse):
            row = await eventually(lambda doc=doc: _filed(a, doc["id"]), what=doc["type"])
            assert (row.kind, row.name) == ("thread", doc["name"])
        assert set(await collection_items(f"{coop}/discussions")) == {nodebb["id"],
                                                                       discourse["id"]}
    finally:
        await peer.stop()


async def test_private_coop_forum_collections_need_a_member(instances: StartInstance) -> None:
    a = await instances("127.0.0.2")
    await a.create_user("alice")
    coop = await a.create_coop("secret", "alice", private=True)

    async def open_thread(ctx: Context, s: AsyncSession) -> Object:
        return await start_thread(ctx, s, await member_actor(s, "alice"), "secret",
                                  "Interne", "Réservé aux membres")

    root = await a.run(open_thread)
    peer = await Peer("127.0.0.5").start()
    try:
        stranger = peer.actor("stranger")
        urls = (f"{coop}/discussions", f"{coop}/discussions?page=true", root.context or "")
        for url in urls:
            assert (await get_json(url))[0] == 404  # anonymous
            assert (await get_json(url, {**AS2, **stranger.signed("GET", url)}))[0] == 404
        # Once a moderator accepts her, a member reads them (signed).
        member = Peer("127.0.0.6")
        await member.start()
        try:
            mona = member.actor("mona")
            follow_ = {"@context": CONTEXT, "id": f"{mona.id}/follows/1", "type": "Follow",
                       "actor": mona.id, "object": coop}
            assert (await mona.post(f"{a.base}/inbox", follow_))[0] == 202

            async def accept_mona(ctx: Context, s: AsyncSession) -> bool:
                follower = (await s.execute(select(Actor).where(Actor.uri == mona.id))).scalar()
                if follower is None:
                    return False
                group = (await s.execute(select(Actor).where(Actor.uri == coop))).scalar_one()
                await approve(ctx, s, await member_actor(s, "alice"), group, follower)
                return True

            await eventually(lambda: _pending(a, mona.id), what="mona's request stored")
            assert await a.run(accept_mona)
            for url in urls:
                status, doc = await get_json(url, {**AS2, **mona.signed("GET", url)})
                assert status == 200, (url, doc)
            page_url = f"{root.context}?page=true"
            _, page = await get_json(page_url, {**AS2, **mona.signed("GET", page_url)})
            assert page["orderedItems"] == [root.uri]
        finally:
            await member.stop()
    finally:
        await peer.stop()

