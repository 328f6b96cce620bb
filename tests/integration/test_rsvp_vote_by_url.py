"""`t3r1 admin rsvp` and `t3r1 admin vote` by URL (coops/by_url.py): a member of A takes
part in, and votes on, B's meeting and poll that A never stored — fetched through the
resolver, then answered as a member would (Join, vote Note) — and B counts them; URLs
that designate no Event/Question are refused clearly."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from t3r1_fed.db.models import Object
from t3r1_fed.db.models_coops import EventRsvp, PollOption
from tests.conftest import StartInstance
from tests.integration.test_toolkit_cli import Cli, ok, refused, stored, t3r1  # noqa: F401
from tests.testrig import Instance, eventually

pytestmark = pytest.mark.federation


async def rsvps(inst: Instance, uri: str) -> list[str]:
    async with inst.session() as s:
        q = (select(EventRsvp.state).join(Object, Object.id == EventRsvp.event_id)
             .where(Object.uri == uri))
        return list((await s.execute(q)).scalars())


async def votes(inst: Instance, uri: str) -> dict[str, int]:
    async with inst.session() as s:
        o = (await s.execute(select(Object).where(Object.uri == uri))).scalar_one()
        q = select(PollOption.name, PollOption.votes).where(PollOption.poll_id == o.id)
        return {n: v for n, v in (await s.execute(q)).all()}


async def test_rsvp_and_vote_on_a_remote_url(
    instances: StartInstance, t3r1: Cli  # noqa: F811
) -> None:
    a = await instances("127.0.0.2")
    b = await instances("127.0.0.3")
    await a.create_user("alice")
    await b.create_user("bob")
    await b.create_coop("syndicat", "bob")
    ev = ok(await t3r1(b, "admin", "event", "bob", "syndicat", "Assemblée",
                       "--start", "2099-01-10T18:00:00+01:00"))
    poll = ok(await t3r1(b, "admin", "poll", "bob", "syndicat", "On reconduit ?", "Oui",
                         "Non", "--ends", "2099-01-01T00:00:00+01:00"))
    note = ok(await t3r1(b, "admin", "news", "bob", "syndicat", "Une simple nouvelle"))
    assert await stored(a, ev) is None and await stored(a, poll) is None

    # wrong kinds of URLs: clear refusals, nothing sent
    refused(await t3r1(a, "admin", "rsvp", "alice", poll), "is a Question, not a meeting (Event)")
    refused(await t3r1(a, "admin", "vote", "alice", note, "Oui"),
            "not a poll (Question)")
    refused(await t3r1(a, "admin", "vote", "alice", ev, "Oui"), "is a Event, not a poll")
    refused(await t3r1(a, "admin", "rsvp", "alice", f"{b.base}/o/nothing-here"),
            "not a meeting (Event) we can fetch")
    refused(await t3r1(a, "admin", "rsvp", "alice", f"{b.base}/u/bob"), "not a meeting")
    refused(await t3r1(a, "admin", "rsvp", "alice", "pas une adresse"), "not a URL")
    assert await rsvps(b, ev) == []

    # the meeting: fetched, Join sent, B counts alice and answers Accept
    assert ok(await t3r1(a, "admin", "rsvp", "alice", ev)) == f"taking part (pending): {ev}"
    row = await stored(a, ev)
    assert row is not None and row.type == "Event" and not row.local

    async def counted_on_b() -> bool:
        return await rsvps(b, ev) == ["accepted"]

    await eventually(counted_on_b, what="B counts alice's RSVP")

    async def accepted_on_a() -> bool:
        return await rsvps(a, ev) == ["accepted"]

    await eventually(accepted_on_a, what="B's Accept reaches A")

    # the poll: fetched, vote Note sent, B counts it
    assert ok(await t3r1(a, "admin", "vote", "alice", poll, "Oui")) == f"1 vote sent: {poll}"

    async def vote_counted() -> bool:
        return await votes(b, poll) == {"Oui": 1, "Non": 0}

    await eventually(vote_counted, what="B counts alice's vote")
    refused(await t3r1(a, "admin", "vote", "alice", poll, "Non"), "already voted")
