"""Consultations across two real instances and a Mastodon-like peer: Question federation,
votes in Mastodon's format, single/multiple choice, closing, and results re-published."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.follows import follow
from t3r1_fed.actors.local import get_coop
from t3r1_fed.context import Context
from t3r1_fed.coops.polls import PollError, Results, create_poll, results, vote
from t3r1_fed.db.models import Actor, Follow, InboxItem, Object, utcnow
from t3r1_fed.db.models_coops import Poll
from t3r1_fed.vocab.context import AS_PUBLIC
from tests.conftest import StartInstance
from tests.peer import CONTEXT, Peer, PeerActor, wait_received
from tests.testrig import Instance, eventually

pytestmark = pytest.mark.federation


async def actor(s: AsyncSession, uri: str) -> Actor:
    return (await s.execute(select(Actor).where(Actor.uri == uri))).scalar_one()


async def obj_of(s: AsyncSession, uri: str) -> Object:
    return (await s.execute(select(Object).where(Object.uri == uri))).scalar_one()


async def results_on(inst: Instance, uri: str) -> Results | None:
    async def go(ctx: Context, s: AsyncSession) -> Results | None:
        o = (await s.execute(select(Object).where(Object.uri == uri))).scalar()
        if o is None:
            return None
        try:
            return await results(ctx, s, o)
        except PollError:
            return None

    return await inst.run(go)


async def counts_on(inst: Instance, uri: str) -> dict[str, int] | None:
    r = await results_on(inst, uri)
    return dict(r.options) if r else None


async def new_poll(a: Instance, alice: str, options: list[str], **kw: Any) -> str:
    async def go(ctx: Context, s: AsyncSession) -> str:
        coop, group = await get_coop(s, "syndicat")
        row = await create_poll(ctx, s, await actor(s, alice), group, coop,
                                question="Grève reconductible ?", options=options, **kw)
        return row.uri

    return await a.run(go)


def vote_create(
    voter: PeerActor, question: str, author: str, choice: str, n: int
) -> dict[str, Any]:
    """A vote exactly as Mastodon sends it (ActivityPub::VoteSerializer)."""
    note = {"id": f"{voter.id}#votes/{n}", "type": "Note", "name": choice,
            "attributedTo": voter.id, "inReplyTo": question, "to": author}
    return {"@context": CONTEXT, "id": f"{voter.id}#votes/{n}/activity", "type": "Create",
            "actor": voter.id, "to": author, "object": note}


async def inbox_result(inst: Instance, activity_id: str) -> tuple[str, str] | None:
    async with inst.session() as s:
        q = select(InboxItem.state, InboxItem.result).where(InboxItem.activity_uri == activity_id)
        row = (await s.execute(q)).first()
        return (row[0], row[1] or "") if row and row[0] in ("done", "ignored") else None


async def setup(instances: StartInstance) -> tuple[Instance, Instance, Peer, str, str, str]:
    a = await instances("127.0.0.2")
    b = await instances("127.0.0.3")
    alice = await a.create_user("alice")
    coop = await a.create_coop("syndicat", "alice")
    bob = await b.create_user("bob")

    async def join(ctx: Context, s: AsyncSession) -> None:
        await follow(ctx, s, "bob", f"syndicat@{a.domain}")

    await b.run(join)

    async def accepted() -> bool:
        async with a.session() as s:
            return (await s.execute(select(Follow.state))).scalar() == "accepted"

    await eventually(accepted, what="bob is a member")
    peer = await Peer("127.0.0.5").start()
    mona = peer.actor("mona")
    follow_act = {"@context": CONTEXT, "id": f"{peer.base}/follows/1", "type": "Follow",
                  "actor": mona.id, "object": coop}
    assert (await mona.post(f"{a.base}/inbox", follow_act))[0] == 202
    await wait_received(peer, 1, "Accept")
    return a, b, peer, alice, coop, bob


async def test_single_choice_poll_votes_and_results(instances: StartInstance) -> None:
    a, b, peer, alice, _coop, bob = await setup(instances)
    try:
        mona = peer.actors["mona"]
        q = await new_poll(a, alice, ["Oui", "Non", "Abstention"],
                           closes_at=utcnow() + timedelta(hours=1))
        # B stores the Question with its options.
        assert await eventually(lambda: counts_on(b, q), what="poll on B") == {
            "Oui": 0, "Non": 0, "Abstention": 0}

        # bob (B) votes through the service API: a vote Note goes to alice on A.
        async def bob_votes(ctx: Context, s: AsyncSession) -> int:
            return await vote(ctx, s, await actor(s, bob), await obj_of(s, q), ["Oui"])

        assert await b.run(bob_votes) == 1
        await eventually(lambda: _eq(counts_on(a, q), {"Oui": 1, "Non": 0, "Abstention": 0}),
                         what="bob's vote counted on A")
        with pytest.raises(PollError, match="already voted"):
            await b.run(bob_votes)

        # mona (Mastodon) votes in Mastodon's format.
        v1 = vote_create(mona, q, alice, "Non", 1)
        assert (await mona.post(f"{a.base}/u/alice/inbox", v1))[0] == 202
        assert await eventually(lambda: inbox_result(a, v1["id"])) == ("done", "vote counted")
        # A second choice on a single-choice poll is refused.
        v2 = vote_create(mona, q, alice, "Oui", 2)
        assert (await mona.post(f"{a.base}/u/alice/inbox", v2))[0] == 202
        state, why = await eventually(lambda: inbox_result(a, v2["id"]))
        assert state == "ignored" and "single choice" in why
        # An unknown option too.
        v3 = vote_create(mona, q, alice, "Peut-être", 3)
        assert (await mona.post(f"{a.base}/u/alice/inbox", v3))[0] == 202
        state, why = await eventually(lambda: inbox_result(a, v3["id"]))
        assert state == "ignored" and "no such option" in why

        final = await results_on(a, q)
        assert final is not None and dict(final.options) == {"Oui": 1, "Non": 1, "Abstention": 0}
        assert final.voters_count == 2 and not final.multiple and not final.closed
        # Votes are never stored as posts nor redistributed.
        async with a.session() as s:
            assert (await s.execute(select(Object).where(Object.uri == v1["object"]["id"]))
                    ).scalar() is None

        # B receives the re-published Question with the counts.
        await eventually(lambda: _eq(counts_on(b, q), {"Oui": 1, "Non": 1, "Abstention": 0}),
                         what="counts on B")
        b_res = await results_on(b, q)
        assert b_res is not None and b_res.voters_count == 2
        # mona, a voter and a follower of the cooperative, got Update{Question} with counts.
        def counted(act: dict[str, Any]) -> bool:
            inner = act.get("object")
            if act["type"] == "Announce" and isinstance(inner, dict):
                inner = inner.get("object")
            return (isinstance(inner, dict) and inner.get("id") == q
                    and inner.get("votersCount") == 2)

        async def mona_got_update() -> bool:
            return any(counted(x) for x in peer.activities())

        await eventually(mona_got_update, what="Update with counts at the peer")
        update = next(x for x in peer.activities("Update") if counted(x))
        assert update["actor"] == alice
        assert {o["name"]: o["replies"]["totalItems"] for o in update["object"]["oneOf"]} == {
            "Oui": 1, "Non": 1, "Abstention": 0}
    finally:
        await peer.stop()


async def test_multiple_choice_and_closing(instances: StartInstance) -> None:
    a, b, peer, alice, _coop, bob = await setup(instances)
    try:
        mona = peer.actors["mona"]
        q = await new_poll(a, alice, ["Lundi", "Mardi", "Jeudi"], multiple=True,
                           closes_at=utcnow() + timedelta(hours=1))
        await eventually(lambda: counts_on(b, q), what="poll on B")
        for n, choice in enumerate(["Lundi", "Jeudi"], start=1):
            v = vote_create(mona, q, alice, choice, n)
            assert (await mona.post(f"{a.base}/u/alice/inbox", v))[0] == 202
            assert await eventually(lambda v=v: inbox_result(a, v["id"])) == ("done",
                                                                              "vote counted")
        # The same option again is not counted twice.
        again = vote_create(mona, q, alice, "Lundi", 9)
        assert (await mona.post(f"{a.base}/u/alice/inbox", again))[0] == 202
        assert await eventually(lambda: inbox_result(a, again["id"])) == ("done", "vote repeated")

        async def alice_votes(ctx: Context, s: AsyncSession) -> int:
            return await vote(ctx, s, await actor(s, alice), await obj_of(s, q),
                              ["Mardi", "Jeudi"])

        assert await a.run(alice_votes) == 2
        r = await results_on(a, q)
        assert r is not None and r.multiple
        assert dict(r.options) == {"Lundi": 1, "Mardi": 1, "Jeudi": 2} and r.voters_count == 2

        # After the closing time no vote is accepted, and the final Update says `closed`.
        await pass_closing_time(a, q)
        late = vote_create(mona, q, alice, "Mardi", 10)
        assert (await mona.post(f"{a.base}/u/alice/inbox", late))[0] == 202
        state, why = await eventually(lambda: inbox_result(a, late["id"]))
        assert state == "ignored" and "closed" in why
        r = await results_on(a, q)
        assert r is not None and r.closed and dict(r.options)["Mardi"] == 1

        async def closed_update() -> bool:
            return any(isinstance(x["object"], dict) and x["object"].get("closed")
                       for x in peer.activities("Update"))

        await eventually(closed_update, what="final Update with closed")

        async def bob_late(ctx: Context, s: AsyncSession) -> None:
            await vote(ctx, s, await actor(s, bob), await obj_of(s, q), ["Lundi"])

        await eventually(lambda: _closed_on(b, q), what="B sees the poll closed")
        with pytest.raises(PollError, match="closed"):
            await b.run(bob_late)
        assert await counts_on(b, q) == {"Lundi": 1, "Mardi": 1, "Jeudi": 2}
    finally:
        await peer.stop()


async def pass_closing_time(inst: Instance, uri: str) -> None:
    """Time passes: the poll's closing time is now behind us (as if an hour had gone by;
    nothing is sent, exactly as when the clock moves on)."""

    async def go(ctx: Context, s: AsyncSession) -> None:
        o = await obj_of(s, uri)
        poll = await s.get(Poll, o.id)
        assert poll is not None
        poll.closes_at = utcnow() - timedelta(seconds=1)
        doc = orjson.loads(o.raw)
        doc["endTime"] = poll.closes_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        o.raw = orjson.dumps(doc).decode()

    await inst.run(go)


async def _closed_on(inst: Instance, uri: str) -> bool:
    r = await results_on(inst, uri)
    return r is not None and r.closed


async def _eq(value: Any, expected: Any) -> bool:
    return await value == expected


def mastodon_question(peer: Peer, author: PeerActor, to: list[str], votes: list[int],
                      *, closed: bool = False) -> dict[str, Any]:
    """A poll as Mastodon serialises it (ActivityPub::NoteSerializer for a status with a
    poll)."""
    uri = f"{peer.base}/objects/q1"
    doc: dict[str, Any] = {
        "@context": [*CONTEXT, {"toot": "http://joinmastodon.org/ns#",
                                "votersCount": "toot:votersCount"}],
        "id": uri, "type": "Question", "attributedTo": author.id, "url": uri,
        "content": "<p>On fait grève le 5 ?</p>", "to": to, "cc": [f"{author.id}/followers"],
        "published": "2026-11-28T12:00:00Z", "sensitive": False, "tag": [],
        "endTime": "2030-01-01T00:00:00Z", "votersCount": sum(votes),
        "oneOf": [{"type": "Note", "name": n, "replies": {"type": "Collection", "totalItems": v}}
                  for n, v in zip(["Oui", "Non"], votes, strict=True)],
    }
    if closed:
        doc["closed"] = "2026-11-28T13:00:00Z"
    peer.objects[uri] = doc
    return doc


async def test_remote_mastodon_poll_ingested_voted_and_updated(
    instances: StartInstance,
) -> None:
    a = await instances("127.0.0.2")
    bob = await a.create_user("bob")
    peer = await Peer("127.0.0.5").start()
    try:
        mona = peer.actor("mona")
        q = mastodon_question(peer, mona, [AS_PUBLIC, bob], [0, 0])
        create = {"@context": CONTEXT, "id": f"{q['id']}/activity", "type": "Create",
                  "actor": mona.id, "object": q, "to": q["to"], "cc": q["cc"]}
        assert (await mona.post(f"{a.base}/inbox", create))[0] == 202
        assert await eventually(lambda: counts_on(a, q["id"]), what="poll on A") == {
            "Oui": 0, "Non": 0}

        # bob votes on the remote poll: Mastodon's vote Note goes to mona.
        async def bob_votes(ctx: Context, s: AsyncSession) -> int:
            return await vote(ctx, s, await actor(s, bob), await obj_of(s, q["id"]), ["Non"])

        async def two(ctx: Context, s: AsyncSession) -> int:
            return await vote(ctx, s, await actor(s, bob), await obj_of(s, q["id"]),
                              ["Oui", "Non"])

        with pytest.raises(PollError, match="single choice"):
            await a.run(two)
        assert await a.run(bob_votes) == 1
        got = (await wait_received(peer, 1, "Create"))[0]
        note = got["object"]
        assert got["actor"] == bob and note["type"] == "Note" and note["name"] == "Non"
        assert note["inReplyTo"] == q["id"] and note["attributedTo"] == bob
        assert note["to"] == [mona.id] and "content" not in note
        with pytest.raises(PollError, match="already voted"):
            await a.run(bob_votes)

        # mona's server re-publishes the poll with the counts, then closes it.
        for n, (votes, closed) in enumerate((([0, 1], False), ([2, 1], True)), start=1):
            fresh = mastodon_question(peer, mona, [AS_PUBLIC, bob], votes, closed=closed)
            update = {"@context": CONTEXT, "id": f"{q['id']}/updates/{n}", "type": "Update",
                      "actor": mona.id, "object": fresh, "to": fresh["to"]}
            assert (await mona.post(f"{a.base}/inbox", update))[0] == 202
            expected = {"Oui": votes[0], "Non": votes[1]}
            await eventually(lambda e=expected: _eq(counts_on(a, q["id"]), e),
                             what=f"update {n} applied")
        r = await results_on(a, q["id"])
        assert r is not None and r.voters_count == 3 and r.closed
    finally:
        await peer.stop()
