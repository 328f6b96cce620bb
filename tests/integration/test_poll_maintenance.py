"""The worker's maintenance pass on consultations, across two real instances and a
Mastodon-like peer: result Updates throttled per poll (the held-back counts sent by the
pass), polls closed when their time has passed without anyone reading or voting, and
several workers running the pass at once sending each Update once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed import maintenance
from t3r1_fed.actors.follows import follow
from t3r1_fed.context import Context
from t3r1_fed.coops.polls import vote
from t3r1_fed.db.models import Activity, Follow, Object, utcnow
from t3r1_fed.db.models_coops import Poll
from tests.conftest import StartInstance
from tests.integration.test_polls import (
    _closed_on,
    _eq,
    actor,
    counts_on,
    inbox_result,
    new_poll,
    obj_of,
    vote_create,
)
from tests.peer import CONTEXT, Peer, wait_received
from tests.testrig import Instance, eventually

pytestmark = pytest.mark.federation

# The two held-back votes must be processed inside this window even on a loaded machine
# (the suite runs on several processes): 4 s was too short under heavy load.
THROTTLE = 6.0


async def setup(
    instances: StartInstance, **a_settings: Any
) -> tuple[Instance, Instance, Peer, str, str]:
    """A (with `a_settings`) runs the cooperative; bob on B and mona (peer) follow it."""
    a = await instances("127.0.0.2", **a_settings)
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
    return a, b, peer, alice, bob


async def updates_of(inst: Instance, uri: str) -> list[tuple[dict[str, Any], Any]]:
    """The Update{Question} activities `inst` published for the poll `uri`, oldest first,
    with when each was made."""
    async with inst.session() as s:
        q = (select(Activity.body, Activity.created_at)
             .where(Activity.type == "Update", Activity.object_uri == uri)
             .order_by(Activity.id))
        return [(orjson.loads(body), at) for body, at in (await s.execute(q)).all()]


def counts(update: dict[str, Any]) -> dict[str, int]:
    return {o["name"]: o["replies"]["totalItems"] for o in update["object"]["oneOf"]}


async def poll_row(inst: Instance, uri: str) -> Poll:
    async with inst.session() as s:
        o = await obj_of(s, uri)
        poll = await s.get(Poll, o.id)
        assert poll is not None
        return poll


async def test_votes_within_the_window_make_one_update_then_the_pass_sends_the_rest(
    instances: StartInstance,
) -> None:
    a, b, peer, alice, bob = await setup(
        instances, poll_update_interval=THROTTLE, maintenance_interval=0.2)
    try:
        mona, noor = peer.actors["mona"], peer.actor("noor")
        q = await new_poll(a, alice, ["Oui", "Non", "Abstention"],
                           closes_at=utcnow() + timedelta(hours=1))
        await eventually(lambda: counts_on(b, q), what="poll on B")

        async def bob_votes(ctx: Context, s: AsyncSession) -> int:
            return await vote(ctx, s, await actor(s, bob), await obj_of(s, q), ["Oui"])

        assert await b.run(bob_votes) == 1
        first = await eventually(lambda: updates_of(a, q), what="first Update")
        # The first counted vote is published at once.
        assert len(first) == 1 and counts(first[0][0]) == {"Oui": 1, "Non": 0, "Abstention": 0}
        # Two more votes inside the throttle window: counted, not published yet.
        for n, (who, choice) in enumerate(((mona, "Non"), (noor, "Abstention")), start=1):
            v = vote_create(who, q, alice, choice, n)
            assert (await who.post(f"{a.base}/u/alice/inbox", v))[0] == 202
            vid: str = v["id"]
            assert await eventually(lambda: inbox_result(a, vid)) == ("done", "vote counted")
        held = await updates_of(a, q)
        assert len(held) == 1, "a second Update went out inside the throttle window"
        assert (await poll_row(a, q)).results_dirty
        # The maintenance pass sends the counts held back, once the window has passed.
        done = await eventually(lambda: _two(a, q), timeout=THROTTLE + 15,
                                what="the held-back counts sent")
        assert done is not None
        assert counts(done[1][0]) == {"Oui": 1, "Non": 1, "Abstention": 1}
        assert done[1][0]["object"]["votersCount"] == 3 and "closed" not in done[1][0]["object"]
        gap = (done[1][1] - done[0][1]).total_seconds()
        assert gap >= THROTTLE - 0.5, f"second Update only {gap:.2f}s after the first"
        row = await poll_row(a, q)
        assert not row.results_dirty and row.closed_at is None
        # B and the voters get those counts.
        await eventually(lambda: _eq(counts_on(b, q), {"Oui": 1, "Non": 1, "Abstention": 1}),
                         what="final counts on B")

        async def peer_has_final() -> bool:
            return any(_inner(x).get("votersCount") == 3 for x in peer.activities()
                       if _inner(x).get("id") == q)

        await eventually(peer_has_final, what="final counts at the peer")
        # Nothing left to send: further passes publish nothing.
        assert await maintenance.run_once(a.ctx) == maintenance.Pass(0, 0)
        assert len(await updates_of(a, q)) == 2
    finally:
        await peer.stop()


async def _two(inst: Instance, uri: str) -> list[tuple[dict[str, Any], Any]] | None:
    ups = await updates_of(inst, uri)
    return ups if len(ups) >= 2 else None


def _inner(act: dict[str, Any]) -> dict[str, Any]:
    inner = act.get("object")
    if act.get("type") == "Announce" and isinstance(inner, dict):
        inner = inner.get("object")
    return inner if isinstance(inner, dict) else {}


async def test_a_poll_past_its_end_is_closed_without_any_read_or_vote(
    instances: StartInstance,
) -> None:
    a, b, peer, alice, _bob = await setup(instances, maintenance_interval=0.2)
    try:
        q = await new_poll(a, alice, ["Lundi", "Mardi"], closes_at=utcnow() + timedelta(seconds=2))
        await eventually(lambda: counts_on(b, q), what="poll on B")
        # Nobody reads the results on A nor votes: the worker closes the poll by itself.
        row = await eventually(lambda: _closed_row(a, q), timeout=20, what="poll closed on A")
        assert row is not None and row.closes_at is not None and row.closed_at is not None
        assert row.closed_at >= row.closes_at
        ups = await updates_of(a, q)
        assert len(ups) == 1 and ups[0][0]["object"]["closed"]
        assert counts(ups[0][0]) == {"Lundi": 0, "Mardi": 0}
        await eventually(lambda: _closed_on(b, q), what="B sees the poll closed")

        async def peer_saw_closed() -> bool:
            return any(_inner(x).get("id") == q and _inner(x).get("closed")
                       for x in peer.activities())

        await eventually(peer_saw_closed, what="closed Update at the peer")
        # Reading it now does not close it again.
        assert await _closed_on(a, q)
        assert len(await updates_of(a, q)) == 1
    finally:
        await peer.stop()


async def _closed_row(inst: Instance, uri: str) -> Poll | None:
    row = await poll_row(inst, uri)
    return row if row.closed_at is not None else None


async def test_concurrent_passes_send_each_update_once(instances: StartInstance) -> None:
    # The instance's own pass is kept out of the way; four passes run at once instead.
    a = await instances("127.0.0.2", maintenance_interval=3600.0, poll_update_interval=60.0)
    alice = await a.create_user("alice")
    await a.create_coop("syndicat", "alice")
    due = [await new_poll(a, alice, ["Oui", "Non"], closes_at=utcnow() + timedelta(hours=1))
           for _ in range(3)]
    dirty = await new_poll(a, alice, ["Oui", "Non"], closes_at=utcnow() + timedelta(hours=1))
    untouched = await new_poll(a, alice, ["Oui", "Non"])

    async def arrange(ctx: Context, s: AsyncSession) -> None:
        for uri in due:  # their time has passed, as if an hour had gone by
            poll = await s.get(Poll, (await obj_of(s, uri)).id)
            assert poll is not None
            poll.closes_at = utcnow() - timedelta(seconds=1)
        o = await obj_of(s, dirty)
        await vote(ctx, s, await actor(s, alice), o, ["Non"])  # sent at once (first vote)
        poll = await s.get(Poll, o.id)
        assert poll is not None and not poll.results_dirty and poll.results_sent_at
        poll.results_dirty = True  # a later vote, held back; the window has passed since
        poll.results_sent_at = utcnow() - timedelta(seconds=61)

    await a.run(arrange)
    passes = await asyncio.gather(*(maintenance.run_once(a.ctx) for _ in range(4)))
    assert sum(p.polls_closed for p in passes) == 3
    assert sum(p.polls_updated for p in passes) == 1
    for uri in due:
        ups = await updates_of(a, uri)
        assert len(ups) == 1 and ups[0][0]["object"].get("closed"), uri
        assert (await poll_row(a, uri)).closed_at is not None
    ups = await updates_of(a, dirty)
    assert len(ups) == 2 and counts(ups[1][0]) == {"Oui": 0, "Non": 1}
    assert await updates_of(a, untouched) == []
    assert await maintenance.run_once(a.ctx) == maintenance.Pass(0, 0)

    # A deleted poll past its end is left alone.
    async def gone(ctx: Context, s: AsyncSession) -> None:
        o = await obj_of(s, untouched)
        o.deleted_at = utcnow()
        poll = await s.get(Poll, o.id)
        assert poll is not None
        poll.closes_at = utcnow() - timedelta(seconds=1)

    await a.run(gone)
    assert await maintenance.run_once(a.ctx) == maintenance.Pass(0, 0)
    async with a.session() as s:
        assert (await s.execute(select(Object.deleted_at).where(Object.uri == untouched))
                ).scalar() is not None


def test_maintenance_settings_are_read_and_checked() -> None:
    from t3r1_fed.config import ConfigError, Settings

    s = Settings.load(env={"T3R1_MAINTENANCE_INTERVAL": "2.5", "T3R1_POLL_UPDATE_INTERVAL": "0"})
    assert (s.maintenance_interval, s.poll_update_interval) == (2.5, 0.0)
    assert Settings().poll_update_interval == 180.0
    with pytest.raises(ConfigError, match="MAINTENANCE_INTERVAL"):
        Settings.load(env={"T3R1_MAINTENANCE_INTERVAL": "0"})
    with pytest.raises(ConfigError, match="POLL_UPDATE_INTERVAL"):
        Settings.load(env={"T3R1_POLL_UPDATE_INTERVAL": "soon"})
