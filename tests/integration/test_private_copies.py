"""Group-authored copies in a private cooperative follow moderation and carry polls.

A hosts the private cooperative; Mastodon-like peers (their NodeInfo says `mastodon`) are
members and receive the group's copies (coops/private.py):
- a moderator's removal of a thread deletes the copies of the thread and its replies, also
  at a member who left since (the copies' recorded inboxes); restoring sends new copies; a
  moderator's deletion of a post deletes its copy;
- a poll's copy is a `Question`; a vote on the copy counts on the original poll (one per
  actor, several only for `anyOf`), and the copy is updated with the counts.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.coops.forum import reply, start_thread
from t3r1_fed.coops.moderation import delete_post, remove_thread, restore_thread
from t3r1_fed.coops.news import member_actor
from t3r1_fed.coops.polls import create_poll
from t3r1_fed.coops.posting import coop_for_actor
from t3r1_fed.db.models import Actor, InboxItem, Object
from t3r1_fed.db.models_coops import PollOption, PollVote
from tests.conftest import StartInstance
from tests.integration.test_private import NodeInfoPeer, ctx_doc, follow_state, peer_joins
from tests.peer import Peer, PeerActor, wait_received
from tests.testrig import Instance, eventually

pytestmark = pytest.mark.federation


async def group_of(s: AsyncSession, uri: str) -> Actor:
    return (await s.execute(select(Actor).where(Actor.uri == uri))).scalar_one()


def copies_by_original(peer: Peer) -> dict[str, dict[str, Any]]:
    """The group's copies a peer received, by original id (latest Create wins)."""
    return {c["object"]["url"]: c["object"] for c in peer.activities("Create")}


def deleted_ids(peer: Peer) -> set[str]:
    return {d["object"]["id"] for d in peer.activities("Delete")}


async def leave(inst: Instance, peer: Peer, actor: PeerActor, coop: str) -> None:
    status, _ = await actor.post(f"{inst.base}/inbox", ctx_doc(
        id=f"{peer.base}/undo/{actor.name}", type="Undo", actor=actor.id,
        object={"id": f"{peer.base}/follows/{actor.name}", "type": "Follow",
                "actor": actor.id, "object": coop}))
    assert status == 202

    async def gone() -> bool:
        return await follow_state(inst, actor.id, coop) is None

    await eventually(gone, what=f"{actor.name}'s membership removed")


async def test_moderation_reaches_the_group_copies(instances: StartInstance) -> None:
    a = await instances("127.0.0.2")
    await a.create_user("alice")
    coop = await a.create_coop("secret", "alice", private=True)
    mast = await NodeInfoPeer("127.0.0.5").start()
    former = await NodeInfoPeer("127.0.0.6").start()
    try:
        mona = mast.actor("mona")
        fiona = former.actor("fiona", key_index=1)
        for who in (mona, fiona):
            await peer_joins(a, coop, who)

        async def thread(ctx: Context, s: AsyncSession) -> tuple[str, str]:
            alice = await member_actor(s, "alice")
            root = await start_thread(ctx, s, alice, "secret", "Caisse de grève",
                                      "Le point sur la **caisse**.")
            answer = await reply(ctx, s, alice, root.uri, "Versements reçus : 12.")
            return root.uri, answer.uri

        root, answer = await a.run(thread)
        for peer in (mast, former):
            await wait_received(peer, 2, "Create")
        first = copies_by_original(mast)
        assert set(first) == {root, answer}
        assert first[answer]["inReplyTo"] == first[root]["id"]
        assert copies_by_original(former)[root]["id"] == first[root]["id"]
        await leave(a, former, fiona, coop)  # fiona still holds the copies

        async def remove(ctx: Context, s: AsyncSession) -> None:
            alice = await member_actor(s, "alice")
            await remove_thread(ctx, s, alice, await group_of(s, coop), root, "Hors sujet")

        await a.run(remove)
        await wait_received(mast, 2, "Delete")
        await wait_received(former, 2, "Delete")
        copy_ids = {first[root]["id"], first[answer]["id"]}
        assert deleted_ids(mast) == copy_ids and deleted_ids(former) == copy_ids
        assert all(d["actor"] == coop for d in mast.activities("Delete"))
        async with a.session() as s:
            rows = (await s.execute(select(Object).where(Object.uri.in_(copy_ids)))).scalars()
            assert all(r.deleted_at is not None for r in rows)

        async def restore(ctx: Context, s: AsyncSession) -> None:
            alice = await member_actor(s, "alice")
            await restore_thread(ctx, s, alice, await group_of(s, coop), root)

        await a.run(restore)
        await wait_received(mast, 4, "Create")
        again = copies_by_original(mast)
        assert {again[root]["id"], again[answer]["id"]}.isdisjoint(copy_ids)  # fresh ids
        assert again[answer]["inReplyTo"] == again[root]["id"]
        assert len(former.activities("Create")) == 2  # a former member gets no new copy

        async def delete(ctx: Context, s: AsyncSession) -> None:
            alice = await member_actor(s, "alice")
            await delete_post(ctx, s, alice, await group_of(s, coop), answer, "Doublon")

        await a.run(delete)
        await wait_received(mast, 3, "Delete")
        assert deleted_ids(mast) == copy_ids | {again[answer]["id"]}
        assert again[root]["id"] not in deleted_ids(mast)
    finally:
        for p in (mast, former):
            await p.stop()


def vote(actor: PeerActor, copy_id: str, coop: str, name: str, n: int) -> dict[str, Any]:
    """Mastodon's vote: Create{Note{name, inReplyTo: the poll it sees}} to the poll's author."""
    note = {"id": f"{actor.id}/votes/{n}", "type": "Note", "name": name,
            "attributedTo": actor.id, "inReplyTo": copy_id, "to": [coop]}
    return ctx_doc(id=f"{actor.id}/votes/{n}/activity", type="Create", actor=actor.id,
                   object=note, to=[coop])


async def counts(inst: Instance, poll: str) -> dict[str, int]:
    async with inst.session() as s:
        q = (select(PollOption.name, PollOption.votes)
             .join(Object, Object.id == PollOption.poll_id).where(Object.uri == poll))
        return {n: v for n, v in (await s.execute(q)).all()}


async def votes_of(inst: Instance, poll: str) -> int:
    async with inst.session() as s:
        q = (select(PollVote.id).join(Object, Object.id == PollVote.poll_id)
             .where(Object.uri == poll))
        return len(list((await s.execute(q)).scalars()))


async def item_result(inst: Instance, activity: str, expected: str) -> bool:
    """The inbox item `activity` was ignored, its result saying `expected`."""

    async def done() -> str | None:
        async with inst.session() as s:
            q = select(InboxItem.state, InboxItem.result).where(
                InboxItem.activity_uri == activity)
            row = (await s.execute(q)).first()
            return f"{row[0]}: {row[1]}" if row is not None and row[0] != "pending" else None

    result = await eventually(done, what=f"inbox item {activity} processed")
    assert result is not None and result.startswith("ignored") and expected in result, result
    return True


def tally(question: dict[str, Any], key: str) -> dict[str, int]:
    return {o["name"]: o["replies"]["totalItems"] for o in question[key]}


async def test_mastodon_members_vote_on_the_copy_of_a_poll(instances: StartInstance) -> None:
    a = await instances("127.0.0.2")
    await a.create_user("alice")
    coop = await a.create_coop("secret", "alice", private=True)
    mast = await NodeInfoPeer("127.0.0.5").start()
    outsider = await NodeInfoPeer("127.0.0.6").start()
    try:
        mona = mast.actor("mona")
        otto = outsider.actor("otto", key_index=1)
        await peer_joins(a, coop, mona)

        async def open_poll(ctx: Context, s: AsyncSession, *, multiple: bool) -> str:
            alice = await member_actor(s, "alice")
            group = await group_of(s, coop)
            c = await coop_for_actor(s, group.id)
            assert c is not None
            options = ["Jeudi", "Vendredi", "Samedi"] if multiple else ["Oui", "Non"]
            row = await create_poll(ctx, s, alice, group, c, question="On fait grève ?",
                                    options=options, multiple=multiple)
            return row.uri

        poll = await a.run(lambda ctx, s: open_poll(ctx, s, multiple=False))
        create = (await wait_received(mast, 1, "Create"))[0]
        copy = create["object"]
        assert create["actor"] == coop and copy["attributedTo"] == coop
        assert copy["type"] == "Question" and copy["url"] == poll
        assert tally(copy, "oneOf") == {"Oui": 0, "Non": 0} and copy["votersCount"] == 0

        # mona votes on the copy she sees: counted on the poll, the copy updated.
        assert (await mona.post(f"{a.base}/inbox", vote(mona, copy["id"], coop, "Oui", 1))
                )[0] == 202

        async def counted() -> bool:
            return (await counts(a, poll)) == {"Oui": 1, "Non": 0}

        await eventually(counted, what="vote on the copy counted")

        def copy_updates() -> list[dict[str, Any]]:
            return [u["object"] for u in mast.activities("Update")
                    if u["actor"] == coop and u["object"]["id"] == copy["id"]]

        async def updated() -> bool:
            return any(tally(u, "oneOf") == {"Oui": 1, "Non": 0} and u["votersCount"] == 1
                       for u in copy_updates())

        await eventually(updated, what="the copy updated with the counts")
        assert all(u["type"] == "Question" for u in copy_updates())

        # A second choice on a single-choice poll, and a non-member's vote, are refused.
        assert (await mona.post(f"{a.base}/inbox", vote(mona, copy["id"], coop, "Non", 2))
                )[0] == 202
        assert (await otto.post(f"{a.base}/inbox", vote(otto, copy["id"], coop, "Non", 3))
                )[0] == 202
        for voter, n, why in ((mona, 2, "single choice"), (otto, 3, "may not see")):
            assert await item_result(a, f"{voter.id}/votes/{n}/activity", why)
        multi = await a.run(lambda ctx, s: open_poll(ctx, s, multiple=True))
        await wait_received(mast, 2, "Create")
        mcopy = copies_by_original(mast)[multi]
        assert mcopy["type"] == "Question" and "anyOf" in mcopy
        for n, name in enumerate(("Jeudi", "Samedi"), start=10):
            assert (await mona.post(f"{a.base}/inbox", vote(mona, mcopy["id"], coop, name, n))
                    )[0] == 202

        async def both() -> bool:
            return (await counts(a, multi)) == {"Jeudi": 1, "Vendredi": 0, "Samedi": 1}

        await eventually(both, what="two choices counted on the anyOf poll")
        assert await counts(a, poll) == {"Oui": 1, "Non": 0}
        assert await votes_of(a, poll) == 1

        async def multi_updated() -> bool:
            return any(u["object"]["id"] == mcopy["id"] and u["object"]["votersCount"] == 1
                       and tally(u["object"], "anyOf") == {"Jeudi": 1, "Vendredi": 0,
                                                           "Samedi": 1}
                       for u in mast.activities("Update"))

        await eventually(multi_updated, what="the anyOf copy updated")
        assert not outsider.activities("Create") and not outsider.activities("Update")
    finally:
        for p in (mast, outsider):
            await p.stop()
