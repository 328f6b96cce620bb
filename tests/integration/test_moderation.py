"""Moderation across two real instances and a Mastodon-shaped peer.

A hosts the cooperative `syndicat` (admin alice, moderator modo); bob on B and mona on the
peer are members. Moderation done on A reaches B through the group's Announce, and B
honours it only after checking the moderators collection; forged moderation is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.follows import follow
from t3r1_fed.context import Context
from t3r1_fed.coops import flags, moderation
from t3r1_fed.coops.moderators import is_group_moderator
from t3r1_fed.coops.posting import local_post
from t3r1_fed.db.models import Activity, Actor, Delivery, Follow, InboxItem, Object
from t3r1_fed.vocab.context import AS_PUBLIC
from tests.conftest import StartInstance
from tests.peer import Peer, PeerActor, wait_received
from tests.testrig import Instance, eventually

pytestmark = pytest.mark.federation
AS = "https://www.w3.org/ns/activitystreams"


async def actor(s: AsyncSession, uri: str) -> Actor:
    return (await s.execute(select(Actor).where(Actor.uri == uri))).scalar_one()


async def obj(inst: Instance, uri: str) -> Object | None:
    async with inst.session() as s:
        return (await s.execute(select(Object).where(Object.uri == uri))).scalar()


async def processed(inst: Instance, activity_id: str) -> tuple[str, str] | None:
    """(state, result) of an inbox item once the worker is done with it."""
    async with inst.session() as s:
        row = (await s.execute(select(InboxItem.state, InboxItem.result)
                               .where(InboxItem.activity_uri == activity_id))).first()
    return (row[0], row[1] or "") if row is not None and row[0] != "pending" else None


async def announced_inner(inst: Instance, inner_type: str, n: int = 1) -> list[tuple[str, str]]:
    """(state, result) of processed Announces whose inner activity has type `inner_type`."""
    async with inst.session() as s:
        rows = (await s.execute(select(InboxItem.body, InboxItem.state, InboxItem.result))).all()
    out = []
    for body, state, result in rows:
        doc = orjson.loads(body)
        inner = doc.get("object")
        if doc.get("type") == "Announce" and isinstance(inner, dict) \
                and inner.get("type") == inner_type and state != "pending":
            out.append((state, result or ""))
    return out if len(out) >= n else []


async def mona_joins_and_posts(a: Instance, peer: Peer, mona: PeerActor, coop: str) -> str:
    follow_doc = {"@context": AS, "id": f"{peer.base}/follows/1", "type": "Follow",
                  "actor": mona.id, "object": coop}
    assert (await mona.post(f"{a.base}/inbox", follow_doc))[0] == 202
    await wait_received(peer, 1, "Accept")
    note = peer.note(mona, "Tract à relire", to=[AS_PUBLIC], cc=[coop],
                     tag=[{"type": "Mention", "href": coop, "name": f"@syndicat@{a.domain}"}])
    create = {"@context": AS, "id": note["id"] + "/activity", "type": "Create",
              "actor": mona.id, "object": {k: v for k, v in note.items() if k != "@context"},
              "to": note["to"], "cc": note["cc"]}
    assert (await mona.post(f"{a.base}/c/syndicat/inbox", create))[0] == 202
    return str(note["id"])


async def accepted_by(inst: Instance, peer: Peer, group: PeerActor) -> None:
    """The peer group accepts the Follow it received from `inst`."""
    follow_doc = next(f for f in await wait_received(peer, 1, "Follow")
                      if f["object"] == group.id)
    accept = {"@context": AS, "id": f"{group.id}/accepts/1", "type": "Accept",
              "actor": group.id, "object": follow_doc}
    assert (await group.post(f"{inst.base}/inbox", accept))[0] == 202
    state = await eventually(lambda: processed(inst, accept["id"]), what="Accept processed")
    assert state == ("done", "follow accepted"), state


async def setup(instances: StartInstance, peer: Peer) -> tuple[Instance, Instance, str, str]:
    a = await instances("127.0.0.2")
    b = await instances("127.0.0.3")
    alice = await a.create_user("alice")
    modo = await a.create_user("modo")
    coop = await a.create_coop("syndicat", "alice")
    bob = await b.create_user("bob")

    async def name_modo(ctx: Context, s: AsyncSession) -> None:
        await moderation.set_moderator(ctx, s, await actor(s, alice), await actor(s, coop),
                                       await actor(s, modo), True)

    await a.run(name_modo)

    async def bob_joins(ctx: Context, s: AsyncSession) -> None:
        await follow(ctx, s, "bob", f"syndicat@{a.domain}")

    await b.run(bob_joins)

    async def accepted() -> bool:
        async with b.session() as s:
            q = select(Follow.state).where(Follow.follower_id == (await actor(s, bob)).id)
            return (await s.execute(q)).scalar() == "accepted"

    await eventually(accepted, what="bob is a member")
    return a, b, coop, alice


async def test_moderation_delete_remove_lock_pin_and_moderators(instances: StartInstance) -> None:
    peer = await Peer("127.0.0.5").start()
    try:
        a, b, coop, alice = await setup(instances, peer)
        mona = peer.actor("mona")
        note = await mona_joins_and_posts(a, peer, mona, coop)
        await eventually(lambda: obj(b, note), what="mona's post on B")

        # modo deletes mona's post with a reason; B tombstones it although mona's server
        # still serves it: the group's Announce of its moderator's Delete is what deletes.
        async def mod_delete(ctx: Context, s: AsyncSession) -> None:
            await moderation.delete_post(ctx, s, await actor(s, a.ctx.uris.user("modo")),
                                         await actor(s, coop), note, "Hors sujet")

        await a.run(mod_delete)
        gone = await eventually(lambda: _deleted(b, note), what="B tombstoned the post")
        assert gone.removed_reason == "Hors sujet" and gone.content is None
        assert note in peer.objects  # the origin still serves it
        announced = [x for x in await wait_received(peer, 1, "Announce")
                     if isinstance(x["object"], dict) and x["object"]["type"] == "Delete"]
        assert announced and announced[0]["object"]["summary"] == "Hors sujet"
        assert announced[0]["object"]["actor"] == a.ctx.uris.user("modo")

        # alice posts a thread; modo pins, locks and removes it.
        async def post(ctx: Context, s: AsyncSession) -> str:
            return (await local_post(ctx, s, "alice", "syndicat", "Ordre du jour")).uri

        thread = await a.run(post)
        await eventually(lambda: obj(b, thread), what="thread on B")

        async def modo_does(what: str, **kw: Any) -> None:
            async def go(ctx: Context, s: AsyncSession) -> None:
                m, g = await actor(s, ctx.uris.user("modo")), await actor(s, coop)
                fn = getattr(moderation, what)
                await fn(ctx, s, m, g, thread, **kw)
            await a.run(go)

        await modo_does("set_pinned", pinned=True)
        featured = await _get_json(f"{coop}/featured")
        assert [i["id"] for i in featured["orderedItems"]] == [thread]
        await eventually(lambda: _col(b, thread, "pinned_at"), what="B pinned it")

        await modo_does("set_locked", locked=True, reason="Débat clos")
        await eventually(lambda: _col(b, thread, "locked_at"), what="B locked it")
        await modo_does("set_locked", locked=False)
        await eventually(lambda: _col(b, thread, "locked_at", unset=True), what="B unlocked")

        boosts = [x for x in peer.activities("Announce") if x.get("object") == thread]
        assert len(boosts) == 1  # mona (Mastodon-like) saw the group boost the thread
        await modo_does("remove_thread", reason="Doublon")
        removed = await eventually(lambda: _col(b, thread, "removed_at"), what="B removed it")
        assert removed.removed_reason == "Doublon"
        assert (await _get_json(f"{coop}/featured"))["orderedItems"] == []  # gone from it

        # The removal withdraws the boost from Mastodon timelines: Undo{Announce}.
        def undone() -> list[dict[str, Any]]:
            return [x for x in peer.activities("Undo")
                    if isinstance(x.get("object"), dict)
                    and x["object"].get("id") == boosts[0]["id"]]

        await eventually(lambda: _async(undone()), what="Undo of the boost at the peer")
        # Restoring boosts it anew, with a new Announce id; removing again withdraws that.
        await modo_does("restore_thread")
        await eventually(lambda: _col(b, thread, "removed_at", unset=True), what="B restored")
        again = await eventually(lambda: _async(
            [x for x in peer.activities("Announce")
             if x.get("object") == thread and x["id"] != boosts[0]["id"]]), what="new boost")
        await modo_does("remove_thread", reason="Doublon")
        await eventually(lambda: _col(b, thread, "removed_at"), what="B removed it again")
        await eventually(lambda: _async([x for x in peer.activities("Undo")
                                         if isinstance(x.get("object"), dict)
                                         and x["object"].get("id") == again[0]["id"]]),
                         what="Undo of the new boost")

        # alice makes bob (on B) a moderator: the collection lists him, B gets the Add.
        async def promote(ctx: Context, s: AsyncSession) -> None:
            await moderation.set_moderator(ctx, s, await actor(s, alice), await actor(s, coop),
                                           await actor(s, b.ctx.uris.user("bob")), True)

        await a.run(promote)
        mods = await _get_json(f"{coop}/moderators")
        assert b.ctx.uris.user("bob") in mods["orderedItems"]
        assert a.ctx.uris.user("modo") in mods["orderedItems"]
        results = await eventually(lambda: announced_inner(b, "Add"), what="B got the Add")
        assert results[0][0] == "done" and "moderators" in results[0][1]

        # bob now moderates from B: his Lock and Add{featured} go to the group on A, which
        # checks its moderators, applies them and announces them back to B.
        thread2 = await a.run(post)
        await eventually(lambda: obj(b, thread2), what="second thread on B")

        async def bob_moderates(ctx: Context, s: AsyncSession) -> None:
            me, g = await actor(s, ctx.uris.user("bob")), await actor(s, coop)
            await moderation.set_locked(ctx, s, me, g, thread2, True, "Calme")
            await moderation.set_pinned(ctx, s, me, g, thread2, True)

        await b.run(bob_moderates)
        await eventually(lambda: _col(a, thread2, "locked_at"), what="A locked (bob)")
        await eventually(lambda: _col(a, thread2, "pinned_at"), what="A pinned (bob)")
        await eventually(lambda: _col(b, thread2, "locked_at"), what="B locked (announce)")
        await eventually(lambda: _col(b, thread2, "pinned_at"), what="B pinned (announce)")
        featured = await _get_json(f"{coop}/featured")
        assert [i["id"] for i in featured["orderedItems"]] == [thread2]

        # modo deletes alice's (local) removed thread: B tombstones it through the group,
        # and alice's own followers get a Delete signed by alice.
        await modo_does("delete_post", reason="Fin")
        await eventually(lambda: _deleted(b, thread), what="B tombstoned alice's thread")
        async with a.session() as s:
            q = select(Activity.body).where(Activity.type == "Delete",
                                            Activity.actor_id == (await actor(s, alice)).id)
            (body,) = list((await s.execute(q)).scalars())
        assert orjson.loads(body)["object"] == {"id": thread, "type": "Tombstone"}

        # A non-moderator cannot: alice is admin, mona is a mere member.
        async def mona_cannot(ctx: Context, s: AsyncSession) -> None:
            with pytest.raises(moderation.ModerationError):
                await moderation.set_locked(ctx, s, await actor(s, mona.id),
                                            await actor(s, coop), thread, True)

        await a.run(mona_cannot)
    finally:
        await peer.stop()


async def test_forged_moderation_is_ignored(instances: StartInstance) -> None:
    peer = await Peer("127.0.0.5").start()
    try:
        a, b, coop, _ = await setup(instances, peer)
        mona = peer.actor("mona")
        eve = peer.actor("eve", type_="Group")  # a group bob follows, not the post's group
        note = await mona_joins_and_posts(a, peer, mona, coop)
        await eventually(lambda: obj(b, note), what="mona's post on B")

        async def bob_follows_eve(ctx: Context, s: AsyncSession) -> None:
            await follow(ctx, s, "bob", eve.id)

        await b.run(bob_follows_eve)
        await accepted_by(b, peer, eve)
        b_inbox = f"{b.base}/inbox"
        # eve relays a Delete "by a moderator" of a post that is not in her group …
        forged = {"@context": AS, "id": f"{peer.base}/a/forged1", "type": "Announce",
                  "actor": eve.id, "to": [AS_PUBLIC],
                  "object": {"id": f"{peer.base}/a/del1", "type": "Delete", "actor": eve.id,
                             "object": note, "summary": "spam"}}
        assert (await eve.post(b_inbox, forged))[0] == 202
        # … eve sends a Lock of it directly …
        lock = {"@context": AS, "id": f"{peer.base}/a/lock1", "type": "Lock",
                "actor": eve.id, "object": note, "to": [AS_PUBLIC]}
        assert (await eve.post(b_inbox, lock))[0] == 202
        # … and mona, a member but no moderator, sends a Lock of her own post directly.
        lock2 = {**lock, "id": f"{peer.base}/a/lock2", "actor": mona.id}
        assert (await mona.post(b_inbox, lock2))[0] == 202
        for act_id, reason in ((forged["id"], "not in this group"),
                               (lock["id"], "not in this group"),
                               (lock2["id"], "not relayed by the group")):
            state, why = await eventually(lambda i=act_id: processed(b, i), what=act_id)
            assert state == "ignored" and reason in why, why
        kept = await obj(b, note)
        assert kept is not None and kept.deleted_at is None and kept.locked_at is None
        # Sent to the cooperative itself on A, a member's Lock is refused as well.
        lock3 = {**lock2, "id": f"{peer.base}/a/lock3"}
        assert (await mona.post(f"{a.base}/c/syndicat/inbox", lock3))[0] == 202
        state, why = await eventually(lambda: processed(a, lock3["id"]), what="lock3 on A")
        assert state == "ignored" and "not a moderator" in why
        assert (await obj(a, note)).locked_at is None  # type: ignore[union-attr]

        # What B checks relayed moderation against: A's moderators collection.
        async def mods(ctx: Context, s: AsyncSession) -> tuple[bool, bool]:
            group = await actor(s, coop)
            return (await is_group_moderator(ctx, s, group, mona.id),
                    await is_group_moderator(ctx, s, group, a.ctx.uris.user("modo")))

        assert await b.run(mods) == (False, True)
    finally:
        await peer.stop()


async def test_flags_reach_only_the_moderators_instances(instances: StartInstance) -> None:
    peer = await Peer("127.0.0.5").start()
    try:
        a, b, coop, alice = await setup(instances, peer)
        mona = peer.actor("mona")
        await mona_joins_and_posts(a, peer, mona, coop)
        bob = b.ctx.uris.user("bob")

        async def promote(ctx: Context, s: AsyncSession) -> str:
            await moderation.set_moderator(ctx, s, await actor(s, alice), await actor(s, coop),
                                           await actor(s, bob), True)
            return (await local_post(ctx, s, "alice", "syndicat", "Message douteux")).uri

        post = await a.run(promote)
        # Mastodon's report: by the instance actor, about the account and its post.
        server = peer.actor("actor", type_="Application")
        report = {"@context": AS, "id": f"{peer.base}/reports/1", "type": "Flag",
                  "actor": server.id, "content": "Propos injurieux", "to": alice,
                  "object": [alice, post]}
        assert (await server.post(f"{a.base}/inbox", report))[0] == 202
        state, result = await eventually(lambda: processed(a, report["id"]), what="flag")
        assert state == "done" and "forwarded to 1" in result

        async def a_flags(ctx: Context, s: AsyncSession) -> list[Any]:
            return await flags.list_flags(ctx, s, await actor(s, alice), await actor(s, coop))

        stored = await a.run(a_flags)
        assert len(stored) == 1 and stored[0].comment == "Propos injurieux"
        assert orjson.loads(stored[0].object_uris) == [alice, post]

        async def b_flags(ctx: Context, s: AsyncSession) -> list[Any]:
            return await flags.list_flags(ctx, s, await actor(s, bob), await actor(s, coop))

        forwarded = await eventually(lambda: b.run(b_flags), what="B got the report")
        assert forwarded[0].comment == "Propos injurieux"
        # Only bob's instance got it: not the peer, although mona is a member there.
        async with a.session() as s:
            q = (select(Delivery.inbox).join(Activity, Activity.id == Delivery.activity_id)
                 .where(Activity.type == "Flag"))
            assert list((await s.execute(q)).scalars()) == [f"{b.base}/inbox"]
        assert peer.activities("Flag") == []

        # A member of B reports through the service API: the Flag goes to the group.
        async def bob_reports(ctx: Context, s: AsyncSession) -> None:
            await flags.flag(ctx, s, await actor(s, bob), await actor(s, coop), [post], "Encore")

        await b.run(bob_reports)

        async def two() -> list[Any] | None:
            got = await a.run(a_flags)
            return got if len(got) == 2 else None

        assert (await eventually(two, what="A stored bob's report"))[0].comment == "Encore"

        # A member of A reports through the service API: stored, and forwarded to bob too.
        async def modo_reports(ctx: Context, s: AsyncSession) -> None:
            row = await flags.flag(ctx, s, await actor(s, ctx.uris.user("modo")),
                                   await actor(s, coop), [post], "Vu aussi")
            assert row is not None and row.state == "open"

        await a.run(modo_reports)

        async def three_on_b() -> list[Any] | None:
            got = await b.run(b_flags)
            return got if len(got) == 3 else None

        assert {f.comment for f in await eventually(three_on_b, what="forwards on B")} == {
            "Vu aussi", "Encore", "Propos injurieux"}
        carl = await b.create_user("carl")  # not a moderator: sees no report
        async with b.session() as s:
            with pytest.raises(moderation.ModerationError):
                await flags.list_flags(b.ctx, s, await actor(s, carl), await actor(s, coop))
    finally:
        await peer.stop()


async def _deleted(inst: Instance, uri: str) -> Object | None:
    o = await obj(inst, uri)
    return o if o is not None and o.deleted_at is not None else None


async def _col(inst: Instance, uri: str, column: str, *, unset: bool = False) -> Object | None:
    o = await obj(inst, uri)
    if o is None:
        return None
    return o if (getattr(o, column) is None) == unset else None


async def _get_json(url: str) -> Any:
    async with ClientSession() as http, http.get(
        url, headers={"Accept": "application/activity+json"}
    ) as r:
        assert r.status == 200
        return await r.json(content_type=None)


@dataclass
class Community(PeerActor):
    """A Lemmy-shaped community: moderators published as its `attributedTo` collection."""

    def document(self) -> dict[str, Any]:
        doc = super().document()
        doc["attributedTo"] = f"{self.peer.base}/objects/{self.name}-mods"
        doc["featured"] = f"{self.peer.base}/objects/{self.name}-featured"
        return doc


async def test_lemmy_shaped_community_moderation(instances: StartInstance) -> None:
    """Shapes of samples/lemmy/activities/{community/lock_page, deletion/remove_note}."""
    peer = await Peer("127.0.0.5").start()
    try:
        b = await instances("127.0.0.3")
        await b.create_user("bob")
        priv, pub = peer.actor("x").private_pem, peer.actor("x").public_pem
        main = Community(peer, "main", priv, pub, "Group")
        peer.actors["main"] = main
        mod, alpha = peer.actor("lemmy_beta"), peer.actor("lemmy_alpha")
        peer.objects[f"{peer.base}/objects/main-mods"] = {
            "@context": AS, "id": f"{peer.base}/objects/main-mods",
            "type": "OrderedCollection", "orderedItems": [mod.id]}

        async def bob_follows(ctx: Context, s: AsyncSession) -> None:
            await follow(ctx, s, "bob", main.id)

        await b.run(bob_follows)
        await accepted_by(b, peer, main)
        page = f"{peer.base}/objects/post2"
        peer.objects[page] = {"@context": AS, "id": page, "type": "Page",
                              "attributedTo": alpha.id, "name": "Grève", "content": "<p>?</p>",
                              "to": [main.id, AS_PUBLIC], "audience": main.id,
                              "published": "2026-11-28T12:00:00Z"}
        inbox = f"{b.base}/inbox"

        async def announce(n: int, inner: dict[str, Any]) -> tuple[str, str]:
            doc = {"@context": AS, "id": f"{peer.base}/activities/announce/{n}",
                   "type": "Announce", "actor": main.id, "to": [AS_PUBLIC],
                   "cc": [f"{main.id}/followers"], "object": inner}
            assert (await main.post(inbox, doc))[0] == 202
            return await eventually(lambda: processed(b, doc["id"]), what=f"announce {n}")

        create = {"id": f"{peer.base}/activities/create/1", "type": "Create",
                  "actor": alpha.id, "object": page, "to": [AS_PUBLIC], "cc": [main.id]}
        assert (got := await announce(1, create))[0] == "done", got
        lock = {"id": f"{peer.base}/activities/lock/1", "actor": mod.id, "type": "Lock",
                "object": page, "to": [AS_PUBLIC], "cc": [main.id], "audience": main.id,
                "summary": "A reason for the lock"}
        assert await announce(2, lock) == ("done", "thread locked")
        assert (await obj(b, page)).locked_at is not None  # type: ignore[union-attr]
        eve = peer.actor("eve")  # neither the author nor a moderator
        forged = {**lock, "id": f"{peer.base}/activities/lock/2", "actor": eve.id,
                  "type": "Delete", "summary": "not a mod"}
        state, why = await announce(3, forged)
        assert state == "ignored" and "not a moderator" in why
        unlock = {"id": f"{peer.base}/activities/undo/1", "type": "Undo", "actor": mod.id,
                  "object": lock, "to": [AS_PUBLIC], "cc": [main.id]}
        assert await announce(4, unlock) == ("done", "thread unlocked")
        remove = {"id": f"{peer.base}/activities/delete/1", "type": "Delete", "actor": mod.id,
                  "object": page, "to": [AS_PUBLIC], "cc": [main.id], "summary": "bad post"}
        assert await announce(5, remove) == ("done", "deleted by a group moderator")
        gone = await obj(b, page)
        assert gone is not None and gone.deleted_at is not None and page in peer.objects
        assert gone.removed_reason == "bad post" and gone.locked_at is None
    finally:
        await peer.stop()


async def test_featured_of_a_private_cooperative_is_hidden(instances: StartInstance) -> None:
    a = await instances("127.0.0.2")
    await a.create_user("alice")
    secret = await a.create_coop("secret", "alice", private=True)

    async def pin(ctx: Context, s: AsyncSession) -> str:
        me, g = await actor(s, ctx.uris.user("alice")), await actor(s, secret)
        s.add(Follow(uri=ctx.uris.activity(), follower_id=me.id, followee_id=g.id,
                     state="accepted"))
        uri = (await local_post(ctx, s, "alice", "secret", "Réunion privée")).uri
        await moderation.set_pinned(ctx, s, me, g, uri, True)
        with pytest.raises(moderation.ModerationError):  # already pinned
            await moderation.set_pinned(ctx, s, me, g, uri, True)
        return uri

    await a.run(pin)
    async with ClientSession() as http, http.get(
        f"{secret}/featured", headers={"Accept": "application/activity+json"}
    ) as r:
        assert r.status == 404  # anonymous: nothing revealed
    async with a.session() as s:
        assert len(await moderation.pinned_posts(s, await actor(s, secret))) == 1


async def _async(value: Any) -> Any:
    return value
