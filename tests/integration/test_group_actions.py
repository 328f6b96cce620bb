"""Inbound gaps in moderation and membership (inbox/group_actions.py), with real instances
and peers: a remote moderator deletes a post from a third host in our cooperative, a remote
group bans one of our members, invitations answered by id, and Undo{Join} as a Leave."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.follows import follow
from t3r1_fed.actors.local import get_coop
from t3r1_fed.context import Context
from t3r1_fed.coops import moderation
from t3r1_fed.coops.events import create_event
from t3r1_fed.coops.membership import invite
from t3r1_fed.db.models import Actor, Follow, Object
from t3r1_fed.db.models_coops import EventRsvp, Invite
from t3r1_fed.federation.httpsig import sign_headers
from t3r1_fed.federation.keys import load_private_key
from t3r1_fed.vocab.context import AS_PUBLIC
from tests.conftest import StartInstance
from tests.integration.test_moderation import (
    Community,
    actor,
    mona_joins_and_posts,
    obj,
    processed,
    setup,
)
from tests.peer import Peer, PeerActor, wait_received
from tests.testrig import Instance, eventually

pytestmark = pytest.mark.federation
AS = "https://www.w3.org/ns/activitystreams"


async def post_as(inst: Instance, username: str, url: str, doc: dict[str, Any]) -> tuple[int, Any]:
    """POST `doc` to `url` signed with the key of `username`, a local user of `inst`
    (straight to that inbox: our own delivery would pick the shared inbox)."""
    async with inst.session() as s:
        me = await actor(s, inst.ctx.uris.user(username))
    assert me.key_id is not None and me.private_key_pem is not None
    body = orjson.dumps(doc)
    headers = sign_headers("POST", url, key_id=me.key_id,
                           private_key=load_private_key(me.private_key_pem), body=body)
    async with ClientSession() as http, http.post(url, data=body, headers=headers) as r:
        text = await r.read()
        return r.status, (orjson.loads(text) if text else None)


async def done(inst: Instance, activity_id: Any) -> tuple[str, str]:
    got = await eventually(lambda: processed(inst, str(activity_id)), what=str(activity_id))
    assert got is not None
    return got


async def test_remote_moderator_deletes_a_post_from_a_third_host(
    instances: StartInstance,
) -> None:
    peer = await Peer("127.0.0.5").start()
    try:
        a, b, coop, alice = await setup(instances, peer)
        bob = b.ctx.uris.user("bob")
        await b.create_user("carl")  # on B too, but no moderator
        mona = peer.actor("mona")
        note = await mona_joins_and_posts(a, peer, mona, coop)
        await eventually(lambda: obj(b, note), what="mona's post on B")

        async def name_bob(ctx: Context, s: AsyncSession) -> None:
            await moderation.set_moderator(ctx, s, await actor(s, alice), await actor(s, coop),
                                           await actor(s, bob), True)

        await a.run(name_bob)
        coop_inbox = f"{coop}/inbox"

        def delete(who: str, n: int) -> dict[str, Any]:
            return {"@context": AS, "id": f"{b.base}/activities/del-{who}-{n}", "type": "Delete",
                    "actor": b.ctx.uris.user(who), "object": note, "summary": "Hors charte",
                    "to": [AS_PUBLIC], "cc": [coop], "audience": coop}

        # To a member's inbox, a Delete of another host's object is refused before it is
        # stored, moderator or not.
        status, err = await post_as(b, "bob", f"{a.base}/u/alice/inbox", delete("bob", 0))
        assert status == 403 and "object id" in err["error"], (status, err)
        # To the shared inbox (as Lemmy sends) by carl, no moderator: accepted, then ignored.
        assert (await post_as(b, "carl", f"{a.base}/inbox", delete("carl", 0)))[0] == 202
        state, why = await done(a, delete("carl", 0)["id"])
        assert state == "ignored" and "not a moderator" in why, why
        # Sent to the cooperative by carl, who moderates nothing: accepted, then ignored.
        assert (await post_as(b, "carl", coop_inbox, delete("carl", 1)))[0] == 202
        state, why = await done(a, delete("carl", 1)["id"])
        assert state == "ignored" and "not a moderator" in why, why
        kept = await obj(a, note)
        assert kept is not None and kept.deleted_at is None and kept.content

        # bob sends it to another cooperative's inbox (where he moderates nothing): ignored.
        other = await a.create_coop("autre", "alice")
        assert (await post_as(b, "bob", f"{other}/inbox", delete("bob", 1)))[0] == 202
        state, why = await done(a, delete("bob", 1)["id"])
        assert state == "ignored" and "cooperative's inbox" in why, why
        assert (await obj(a, note)).deleted_at is None  # type: ignore[union-attr]

        # bob, moderator of the cooperative on A, deletes mona's post (on the peer's host),
        # sent to A's shared inbox as Lemmy does.
        assert (await post_as(b, "bob", f"{a.base}/inbox", delete("bob", 2)))[0] == 202
        state, why = await done(a, delete("bob", 2)["id"])
        assert state == "done" and "remote moderator" in why, why
        gone = await obj(a, note)
        assert gone is not None and gone.deleted_at is not None and gone.content is None
        assert gone.removed_reason == "Hors charte"
        assert note in peer.objects  # the origin still serves it: the moderator deleted it

        # The group announces the Delete (summary kept) and withdraws its boost.
        def group_sent(kind: str, inner: str) -> list[dict[str, Any]]:
            return [x for x in peer.activities(kind) if x["actor"] == coop
                    and isinstance(x["object"], dict) and x["object"].get("type") == inner]

        await eventually(lambda: _truthy(group_sent("Announce", "Delete")), what="Announce")
        announced = group_sent("Announce", "Delete")[0]["object"]
        assert announced["actor"] == bob and announced["summary"] == "Hors charte"
        assert announced["object"] == note
        await eventually(lambda: _truthy(group_sent("Undo", "Announce")), what="Undo{Announce}")
        assert group_sent("Undo", "Announce")[0]["object"]["object"] == note
        # B, a member's instance, honours the relayed deletion (bob is in A's moderators).
        on_b = await eventually(lambda: _deleted(b, note), what="tombstoned on B")
        assert on_b is not None and on_b.removed_reason == "Hors charte"
    finally:
        await peer.stop()


async def _truthy(value: Any) -> Any:
    return value or None


async def _deleted(inst: Instance, uri: str) -> Object | None:
    got = await obj(inst, uri)
    return got if got is not None and got.deleted_at is not None else None


async def _follow_state(inst: Instance, follower: str, followee: str) -> str | None:
    async with inst.session() as s:
        q = (select(Follow.state)
             .join(Actor, Actor.id == Follow.follower_id)
             .where(Actor.uri == follower,
                    Follow.followee_id.in_(select(Actor.id).where(Actor.uri == followee))))
        return (await s.execute(q)).scalar()


async def test_remote_group_bans_our_member(instances: StartInstance) -> None:
    """Shapes of samples/lemmy/activities/block: direct, and relayed by the community."""
    peer = await Peer("127.0.0.5").start()
    try:
        b = await instances("127.0.0.3")
        bob = await b.create_user("bob")
        x = peer.actor("x")
        main = Community(peer, "main", x.private_pem, x.public_pem, "Group")
        peer.actors["main"] = main
        mod, eve = peer.actor("lemmy_beta"), peer.actor("eve")
        peer.objects[f"{peer.base}/objects/main-mods"] = {
            "@context": AS, "id": f"{peer.base}/objects/main-mods",
            "type": "OrderedCollection", "orderedItems": [mod.id]}
        inbox = f"{b.base}/u/bob/inbox"

        async def bob_joins(n: int) -> None:
            async def go(ctx: Context, s: AsyncSession) -> None:
                await follow(ctx, s, "bob", main.id)

            await b.run(go)
            sent = (await wait_received(peer, n, "Follow"))[n - 1]
            accept = {"@context": AS, "id": f"{main.id}/accepts/{n}", "type": "Accept",
                      "actor": main.id, "object": sent}
            assert (await main.post(f"{b.base}/inbox", accept))[0] == 202
            assert await done(b, accept["id"]) == ("done", "follow accepted")

        def block(by: PeerActor, n: int, **extra: Any) -> dict[str, Any]:
            return {"@context": AS, "id": f"{peer.base}/activities/block/{n}", "type": "Block",
                    "actor": by.id, "object": bob, "target": main.id, "cc": [main.id],
                    "to": [AS_PUBLIC], "summary": "spam post", "removeData": True,
                    "endTime": (datetime.now(UTC) + timedelta(days=3)).isoformat(), **extra}

        await bob_joins(1)
        # eve is no moderator of main: her "ban" is ignored; a personal Mastodon-style block
        # (no group) changes nothing either.
        personal = {k: v for k, v in block(eve, 2).items() if k not in ("target", "cc")}
        cases: tuple[tuple[dict[str, Any], str], ...] = (
            (block(eve, 1), "not a moderator"), (personal, "by a user"))
        for doc, reason in cases:
            assert (await eve.post(inbox, doc))[0] == 202
            state, why = await done(b, doc["id"])
            assert state == "ignored" and reason in why, why
        assert await _follow_state(b, bob, main.id) == "accepted"

        # main's moderator bans bob, sent to bob: his follow of main is gone.
        direct = block(mod, 3)
        assert (await mod.post(inbox, direct))[0] == 202
        state, why = await done(b, direct["id"])
        assert state == "done" and "follow removed" in why and "spam post" in why, why
        assert await _follow_state(b, bob, main.id) is None

        # Undo{Block}: nothing comes back by itself; bob may follow again.
        undo = {"@context": AS, "id": f"{peer.base}/activities/undo/1", "type": "Undo",
                "actor": mod.id, "object": {k: v for k, v in direct.items() if k != "@context"}}
        assert (await mod.post(inbox, undo))[0] == 202
        state, why = await done(b, undo["id"])
        assert state == "done" and "nothing to restore" in why, why
        assert await _follow_state(b, bob, main.id) is None
        await bob_joins(2)

        # The same ban relayed by the community's Announce (how its followers learn it).
        relayed = {"@context": AS, "id": f"{peer.base}/activities/announce/1",
                   "type": "Announce", "actor": main.id, "to": [AS_PUBLIC],
                   "cc": [f"{main.id}/followers"],
                   "object": {k: v for k, v in block(mod, 4).items() if k != "@context"}}
        assert (await main.post(f"{b.base}/inbox", relayed))[0] == 202
        state, why = await done(b, relayed["id"])
        assert state == "done" and "follow removed" in why, why
        assert await _follow_state(b, bob, main.id) is None
    finally:
        await peer.stop()


async def test_invitation_answered_by_id(instances: StartInstance) -> None:
    a = await instances("127.0.0.2")
    alice = await a.create_user("alice")
    coop = await a.create_coop("cercle", "alice", openness="invite_only")
    peer = await Peer("127.0.0.5").start()
    try:
        mona, nina = peer.actor("mona"), peer.actor("nina")

        async def invite_by_url(ctx: Context, s: AsyncSession, uri: str) -> str:
            from t3r1_fed.coops.membership import find_actor

            row = await invite(ctx, s, await actor(s, alice), await actor(s, coop),
                               await find_actor(ctx, s, uri))
            return row.uri

        ids: dict[str, str] = {}
        for who in (mona, nina):
            async def go(ctx: Context, s: AsyncSession, uri: str = who.id) -> str:
                return await invite_by_url(ctx, s, uri)

            ids[who.name] = await a.run(go)
        # Accept and Reject naming the invitation by its id only (not embedded).
        yes = {"@context": AS, "id": f"{peer.base}/activities/yes", "type": "Accept",
               "actor": mona.id, "object": ids["mona"]}
        no = {"@context": AS, "id": f"{peer.base}/activities/no", "type": "Reject",
              "actor": nina.id, "object": ids["nina"]}
        answers: tuple[tuple[PeerActor, dict[str, Any]], ...] = ((mona, yes), (nina, no))
        for who, doc in answers:
            assert (await who.post(f"{a.base}/inbox", doc))[0] == 202
        assert await done(a, yes["id"]) == ("done", "invitation accepted: member")
        assert await done(a, no["id"]) == ("done", "invitation refused")
        assert await _follow_state(a, mona.id, coop) == "accepted"
        assert await _follow_state(a, nina.id, coop) is None
        confirm = next(x for x in await wait_received(peer, 1, "Accept")
                       if isinstance(x["object"], dict) and x["object"]["id"] == yes["id"])
        assert confirm["actor"] == coop and confirm["object"]["object"] == ids["mona"]
        async with a.session() as s:
            states = {u: st for u, st in (await s.execute(select(Invite.uri, Invite.state))).all()}
        assert states[ids["nina"]] == "rejected"
        # nina's answer again, now by someone else: ignored.
        forged = {**no, "id": f"{peer.base}/activities/no2", "actor": mona.id}
        assert (await mona.post(f"{a.base}/inbox", forged))[0] == 202
        state, why = await done(a, forged["id"])
        assert state == "ignored" and "someone else" in why, why
    finally:
        await peer.stop()


async def test_undo_join_leaves_cooperative_and_meeting(instances: StartInstance) -> None:
    a = await instances("127.0.0.2")
    alice = await a.create_user("alice")
    coop = await a.create_coop("syndicat", "alice")
    peer = await Peer("127.0.0.5").start()
    try:
        mona = peer.actor("mona")
        join = {"@context": AS, "id": f"{peer.base}/joins/coop", "type": "Join",
                "actor": mona.id, "object": coop}
        assert (await mona.post(f"{a.base}/inbox", join))[0] == 202
        assert await done(a, join["id"]) == ("done", "join accepted")

        async def meeting(ctx: Context, s: AsyncSession) -> str:
            c, group = await get_coop(s, "syndicat")
            row = await create_event(ctx, s, await actor(s, alice), group, c, name="AG",
                                     start=datetime.now(UTC) + timedelta(days=7))
            return row.uri

        uri = await a.run(meeting)
        rsvp = {"@context": AS, "id": f"{peer.base}/joins/ag", "type": "Join",
                "actor": mona.id, "object": uri}
        assert (await mona.post(f"{a.base}/inbox", rsvp))[0] == 202
        state, why = await done(a, rsvp["id"])
        assert state == "done" and "accepted" in why, why

        async def rsvps() -> int:
            async with a.session() as s:
                return len((await s.execute(select(EventRsvp.id))).all())

        assert await rsvps() == 1

        def undo(inner: dict[str, Any], n: int) -> dict[str, Any]:
            return {"@context": AS, "id": f"{peer.base}/undos/{n}", "type": "Undo",
                    "actor": mona.id, "object": {k: v for k, v in inner.items() if k != "@context"}}

        assert (await mona.post(f"{a.base}/inbox", undo(rsvp, 1)))[0] == 202
        state, why = await done(a, undo(rsvp, 1)["id"])
        assert state == "done" and "rsvp withdrawn" in why, why
        assert await rsvps() == 0
        # Mobilizon undoes a Join by its id only: only the participant may.
        again = {**rsvp, "id": f"{peer.base}/joins/ag2"}
        assert (await mona.post(f"{a.base}/inbox", again))[0] == 202
        assert (await done(a, again["id"]))[0] == "done"
        nina = peer.actor("nina")
        by_ref = {"@context": AS, "id": f"{peer.base}/undos/r1", "type": "Undo",
                  "actor": nina.id, "object": again["id"]}
        assert (await nina.post(f"{a.base}/inbox", by_ref))[0] == 202
        assert await done(a, by_ref["id"]) == ("ignored", "nothing to undo")
        assert await rsvps() == 1
        by_ref = {**by_ref, "id": f"{peer.base}/undos/r2", "actor": mona.id}
        assert (await mona.post(f"{a.base}/inbox", by_ref))[0] == 202
        state, why = await done(a, by_ref["id"])
        assert state == "done" and "rsvp withdrawn" in why, why
        assert await rsvps() == 0
        assert await _follow_state(a, mona.id, coop) == "accepted"  # still a member
        assert (await mona.post(f"{a.base}/inbox", undo(join, 2)))[0] == 202
        assert await done(a, undo(join, 2)["id"]) == ("done", "left")
        assert await _follow_state(a, mona.id, coop) is None
        # Once more: she is no member any more.
        assert (await mona.post(f"{a.base}/inbox", undo(join, 3)))[0] == 202
        assert await done(a, undo(join, 3)["id"]) == ("ignored", "leave from a non-member")
    finally:
        await peer.stop()
