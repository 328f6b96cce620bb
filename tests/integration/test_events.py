"""Meetings across two real instances and a Mobilizon-like peer: Event federation, RSVP by
Join/Accept/Leave, counts, the events collection and iCalendar exports."""

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
from t3r1_fed.coops.events import (
    EventError,
    Meeting,
    PostalAddress,
    attendee_count,
    create_event,
    event_by_uri,
    join_event,
    leave_event,
    reschedule_event,
)
from t3r1_fed.db.models import Actor, Follow, InboxItem, Object
from t3r1_fed.db.models_coops import Event, EventRsvp
from t3r1_fed.vocab.context import AS_PUBLIC
from tests.conftest import StartInstance
from tests.peer import CONTEXT, Peer, wait_received
from tests.testrig import Instance, eventually

pytestmark = pytest.mark.federation

AS2 = {"Accept": "application/activity+json"}
START = datetime(2030, 3, 5, 17, 30, tzinfo=UTC)


async def actor(s: AsyncSession, uri: str) -> Actor:
    return (await s.execute(select(Actor).where(Actor.uri == uri))).scalar_one()


async def event_row(inst: Instance, uri: str) -> tuple[Object, Event] | None:
    async with inst.session() as s:
        q = select(Object, Event).join(Event, Event.object_id == Object.id).where(Object.uri == uri)
        row = (await s.execute(q)).first()
        return (row[0], row[1]) if row else None


async def rsvp_state(inst: Instance, event_uri: str, actor_uri: str) -> str | None:
    async with inst.session() as s:
        q = (
            select(EventRsvp.state)
            .join(Object, Object.id == EventRsvp.event_id)
            .join(Actor, Actor.id == EventRsvp.actor_id)
            .where(Object.uri == event_uri, Actor.uri == actor_uri)
        )
        return (await s.execute(q)).scalar()


async def served(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with ClientSession() as http, http.get(url, headers=headers or AS2) as r:
        body = await r.read()
        ctype = r.headers.get("Content-Type", "")
        return r.status, (orjson.loads(body) if "json" in ctype else body.decode())


async def setup_pair(instances: StartInstance) -> tuple[Instance, Instance, str, str, str]:
    a = await instances("127.0.0.2")
    b = await instances("127.0.0.3")
    alice = await a.create_user("alice")
    coop = await a.create_coop("syndicat", "alice", title="Syndicat des cheminots")
    bob = await b.create_user("bob")

    async def join(ctx: Context, s: AsyncSession) -> None:
        await follow(ctx, s, "bob", f"syndicat@{a.domain}")

    await b.run(join)

    async def accepted() -> bool:
        async with b.session() as s:
            q = select(Follow.state).join(Actor, Actor.id == Follow.followee_id)
            return (await s.execute(q.where(Actor.uri == coop))).scalar() == "accepted"

    await eventually(accepted, what="bob is a member")
    return a, b, alice, coop, bob


async def new_event(a: Instance, alice: str, **kw: Any) -> str:
    async def go(ctx: Context, s: AsyncSession) -> str:
        coop, group = await get_coop(s, "syndicat")
        args: dict[str, Any] = {
            "name": "AG de rentrée, section nord; ordre du jour",
            "start": START,
            "end": START + timedelta(hours=2),
            "timezone": "Europe/Paris",
            "description": "Ordre du jour :\n1. Élections, mandats; motions\n" + "é" * 60,
            "place_name": "Bourse du travail",
            "address": PostalAddress("3 rue du Château-d'Eau", "75010", "Paris", None, "France"),
            "capacity": 2,
        }
        args.update(kw)
        row = await create_event(ctx, s, await actor(s, alice), group, coop, **args)
        return row.uri

    return await a.run(go)


async def test_event_federates_and_rsvp_round_trip(instances: StartInstance) -> None:
    a, b, alice, coop, bob = await setup_pair(instances)
    uri = await new_event(a, alice)

    # B stores the Event with its events row (start, end, timezone, place).
    got = await eventually(lambda: event_row(b, uri), what="event on B")
    obj, ev = got
    assert obj.type == "Event" and obj.kind == "event" and not obj.local
    assert ev.start_time == START and ev.end_time == START + timedelta(hours=2)
    assert ev.timezone == "Europe/Paris" and ev.location_name == "Bourse du travail"
    assert ev.location_address == "3 rue du Château-d'Eau, 75010, Paris, France"
    assert ev.capacity == 2

    # The served document has the FEP-8a8e / Mobilizon shape.
    status, doc = await served(uri)
    assert status == 200 and doc["type"] == "Event"
    assert doc["startTime"] == "2030-03-05T17:30:00Z" and doc["timezone"] == "Europe/Paris"
    assert doc["location"]["type"] == "Place"
    assert doc["location"]["address"]["type"] == "PostalAddress"
    assert doc["location"]["address"]["postalCode"] == "75010"
    assert doc["participantCount"] == 0 and doc["joinMode"] == "free"
    assert doc["audience"] == coop

    # bob (B) takes part: Join to the organiser on A, Accept back, pending → accepted.
    async def bob_joins(ctx: Context, s: AsyncSession) -> str:
        o, _ = await event_by_uri(s, uri)
        return (await join_event(ctx, s, await actor(s, bob), o)).state

    assert await b.run(bob_joins) == "pending"
    await eventually(lambda: _is(rsvp_state(b, uri, bob), "accepted"), what="Accept on B")
    assert await rsvp_state(a, uri, bob) == "accepted"
    assert (await served(uri))[1]["participantCount"] == 1
    assert (await served(uri))[1]["remainingAttendeeCapacity"] == 1

    async def count_on_a(ctx: Context, s: AsyncSession) -> int:
        o, _ = await event_by_uri(s, uri)
        return await attendee_count(s, o)

    assert await a.run(count_on_a) == 1

    # alice (local) joins too: the meeting is then full for anyone else.
    async def alice_joins(ctx: Context, s: AsyncSession) -> str:
        o, _ = await event_by_uri(s, uri)
        return (await join_event(ctx, s, await actor(s, alice), o)).state

    assert await a.run(alice_joins) == "accepted"
    assert await a.run(count_on_a) == 2
    await a.create_user("carol")

    async def carol_joins(ctx: Context, s: AsyncSession) -> None:
        o, _ = await event_by_uri(s, uri)
        await join_event(ctx, s, await actor(s, ctx.uris.user("carol")), o)

    with pytest.raises(EventError, match="full"):
        await a.run(carol_joins)

    # bob leaves: Leave reaches A, the count drops.
    async def bob_leaves(ctx: Context, s: AsyncSession) -> None:
        o, _ = await event_by_uri(s, uri)
        await leave_event(ctx, s, await actor(s, bob), o)

    await b.run(bob_leaves)
    assert await rsvp_state(b, uri, bob) is None
    await eventually(lambda: _is(rsvp_state(a, uri, bob), None), what="Leave on A")
    assert await a.run(count_on_a) == 1
    assert (await served(uri))[1]["participantCount"] == 1

    # The organiser moves the meeting online: Update{Event}, announced; B follows it.
    later = START + timedelta(days=1)
    online = Meeting("AG (en visio)", later, timezone="Europe/Paris",
                     online_url="https://visio.example/ag", capacity=2)

    async def move(ctx: Context, s: AsyncSession, who: str = alice) -> None:
        o, _ = await event_by_uri(s, uri)
        await reschedule_event(ctx, s, await actor(s, who), o, online)

    with pytest.raises(EventError, match="organiser or a moderator"):
        await a.run(lambda ctx, s: move(ctx, s, ctx.uris.user("carol")))
    await a.run(move)

    async def moved_on_b() -> bool:
        row = await event_row(b, uri)
        return row is not None and row[1].start_time == later

    await eventually(moved_on_b, what="rescheduled meeting on B")
    got = await event_row(b, uri)
    assert got is not None
    assert got[0].name == "AG (en visio)" and got[1].end_time is None
    assert got[1].location_name is None and got[1].online_url == "https://visio.example/ag"
    doc = (await served(uri))[1]
    assert "location" not in doc and doc["isOnline"] is True and doc["participantCount"] == 1


async def _is(value: Any, expected: Any) -> bool:
    return await value == expected


def unfold(text: str) -> list[str]:
    return text.replace("\r\n ", "").split("\r\n")


async def test_events_collection_and_ics(instances: StartInstance) -> None:
    a = await instances("127.0.0.2")
    alice = await a.create_user("alice")
    coop = await a.create_coop("syndicat", "alice")
    past = await new_event(a, alice, name="Passée", start=START.replace(year=2020), end=None)
    later = await new_event(a, alice, name="Plus tard", start=START + timedelta(days=30),
                           end=None)
    soon = await new_event(a, alice, online_url="https://visio.example/salle-ag")

    status, group = await served(coop)
    assert group["events"] == f"{coop}/events" == group["endpoints"]["events"]
    status, coll = await served(f"{coop}/events")
    assert status == 200 and coll["type"] == "OrderedCollection" and coll["totalItems"] == 3
    status, page = await served(coll["first"])
    assert page["type"] == "OrderedCollectionPage"
    assert [e["id"] for e in page["orderedItems"]] == [soon, later, past]  # upcoming first
    online = page["orderedItems"][0]
    assert online["isOnline"] is True
    assert online["attachment"][0]["href"] == "https://visio.example/salle-ag"

    status, text = await served(f"{soon}/event.ics", {"Accept": "text/calendar"})
    assert status == 200
    raw = text.encode()
    assert raw.startswith(b"BEGIN:VCALENDAR\r\n") and raw.endswith(b"END:VCALENDAR\r\n")
    assert all(len(line) <= 75 for line in raw.split(b"\r\n"))  # folded at 75 octets
    assert any(line.startswith(b" ") for line in raw.split(b"\r\n"))  # and folding happened
    lines = unfold(text)
    assert "VERSION:2.0" in lines and "BEGIN:VEVENT" in lines and f"UID:{soon}" in lines
    assert "DTSTART:20300305T173000Z" in lines and "DTEND:20300305T193000Z" in lines
    assert "SUMMARY:AG de rentrée\\, section nord\\; ordre du jour" in lines
    desc = next(x for x in lines if x.startswith("DESCRIPTION:"))
    assert "Ordre du jour :\\n1. Élections\\, mandats\\; motions" in desc
    loc = next(x for x in lines if x.startswith("LOCATION:"))
    assert "Bourse du travail\\, 3 rue du Château-d'Eau" in loc and "visio.example" in loc
    # Folding never cuts a UTF-8 character: every physical line decodes on its own.
    for line in raw.split(b"\r\n"):
        line.decode("utf-8")

    status, text = await served(f"{coop}/events.ics", {"Accept": "text/calendar"})
    lines = unfold(text)
    assert status == 200 and lines.count("BEGIN:VEVENT") == 2  # upcoming only
    assert f"UID:{past}" not in lines


async def test_mobilizon_event_ingested_and_joined(
    instances: StartInstance, samples_dir: Any
) -> None:
    a = await instances("127.0.0.2")
    bob = await a.create_user("bob")
    peer = await Peer("127.0.0.5").start()
    try:
        group = peer.actor("devon_caledonian_society", type_="Group")
        organiser = peer.actor("emorrp1", key_index=0)
        sample = orjson.loads((samples_dir / "mobilizon/objects/event.json").read_bytes())
        event = {
            **sample,
            "id": f"{peer.base}/objects/ev1",
            "url": f"{peer.base}/objects/ev1",
            "attributedTo": group.id,
            "actor": organiser.id,
            "contacts": [organiser.id],
            "to": [AS_PUBLIC, bob],
            "cc": [f"{group.id}/followers"],
            "startTime": "2030-12-11T19:00:00+00:00",
            "endTime": "2030-12-11T21:00:00+00:00",
        }
        peer.objects[event["id"]] = event
        create = {"@context": CONTEXT, "id": f"{peer.base}/activities/c1", "type": "Create",
                  "actor": group.id, "object": event, "to": event["to"], "cc": event["cc"]}
        assert (await group.post(f"{a.base}/inbox", create))[0] == 202
        obj, ev = await eventually(lambda: event_row(a, event["id"]), what="Mobilizon event")
        assert obj.name == "Caledonian scottish dance class" and obj.kind == "event"
        assert ev.start_time == datetime(2030, 12, 11, 19, tzinfo=UTC)
        assert ev.timezone == "Europe/London" and ev.location_name == "The Kenn Centre"
        assert ev.location_address is not None and "EX6 7TW" in ev.location_address
        assert ev.online_url is None and ev.capacity is None

        async def join(ctx: Context, s: AsyncSession) -> str:
            o, _ = await event_by_uri(s, event["id"])
            return (await join_event(ctx, s, await actor(s, bob), o)).uri or ""

        join_id = await a.run(join)
        got = (await wait_received(peer, 1, "Join"))[0]
        assert got["id"] == join_id and got["object"] == event["id"] and got["actor"] == bob
        assert await rsvp_state(a, event["id"], bob) == "pending"
        # Only the organiser (or its group) may accept: a stranger's Accept is ignored.
        stranger = peer.actor("stranger", key_index=0)
        fake = {"@context": CONTEXT, "id": f"{peer.base}/activities/fake", "type": "Accept",
                "actor": stranger.id, "object": got, "to": [bob]}
        assert (await stranger.post(f"{a.base}/inbox", fake))[0] == 202

        async def fake_done() -> bool:
            async with a.session() as s:
                q = select(InboxItem.state).where(InboxItem.activity_uri == fake["id"])
                return (await s.execute(q)).scalar() == "ignored"

        await eventually(fake_done, what="stranger's Accept ignored")
        assert await rsvp_state(a, event["id"], bob) == "pending"
        # Mobilizon's Accept names the Join by its id only (the participant's url).
        accept = {"@context": CONTEXT, "id": f"{peer.base}/activities/acc1", "type": "Accept",
                  "actor": group.id, "object": got["id"], "to": [bob]}
        assert (await group.post(f"{a.base}/inbox", accept))[0] == 202
        await eventually(lambda: _is(rsvp_state(a, event["id"], bob), "accepted"),
                         what="RSVP accepted")

        # An Update from the organising group moves the meeting.
        moved = {**event, "startTime": "2030-12-12T19:00:00+00:00",
                 "endTime": "2030-12-12T21:00:00+00:00", "updated": "2026-11-28T12:00:00Z"}
        peer.objects[event["id"]] = moved
        update = {"@context": CONTEXT, "id": f"{peer.base}/activities/u1", "type": "Update",
                  "actor": group.id, "object": moved, "to": event["to"]}
        assert (await group.post(f"{a.base}/inbox", update))[0] == 202

        async def moved_on_a() -> bool:
            row = await event_row(a, event["id"])
            return row is not None and row[1].start_time.day == 12

        await eventually(moved_on_a, what="event moved")
    finally:
        await peer.stop()


async def test_private_cooperative_meetings_need_a_member_signature(
    instances: StartInstance,
) -> None:
    a = await instances("127.0.0.2")
    alice = await a.create_user("alice")
    coop = await a.create_coop("cellule", "alice", private=True)
    peer = await Peer("127.0.0.5").start()
    try:
        mona, otto = peer.actor("mona"), peer.actor("otto", key_index=0)
        nina = peer.actor("nina", key_index=0)
        for who in (mona, nina):
            follow_act = {"@context": CONTEXT, "id": f"{peer.base}/follows/{who.name}",
                          "type": "Follow", "actor": who.id, "object": coop}
            assert (await who.post(f"{a.base}/inbox", follow_act))[0] == 202

        async def pending() -> bool:
            async with a.session() as s:
                states = (await s.execute(select(Follow.state))).scalars().all()
                return list(states) == ["pending", "pending"]

        await eventually(pending, what="membership requests")

        async def approve_members(ctx: Context, s: AsyncSession) -> None:
            from t3r1_fed.coops.membership import approve

            _, group = await get_coop(s, "cellule")
            for who in (mona, nina):
                await approve(ctx, s, await actor(s, alice), group, await actor(s, who.id))

        await a.run(approve_members)

        async def go(ctx: Context, s: AsyncSession) -> str:
            c, group = await get_coop(s, "cellule")
            row = await create_event(ctx, s, await actor(s, alice), group, c,
                                     name="Réunion de cellule", start=START, capacity=1)
            return row.uri

        uri = await a.run(go)
        for url in (f"{coop}/events", f"{coop}/events?page=1", f"{coop}/events.ics",
                    f"{uri}/event.ics", uri):
            assert (await served(url))[0] == 404, url  # anonymous
            mine = await served(url, {**AS2, **mona.signed("GET", url)})
            assert mine[0] == 200, url  # a member
        # Signed by a non-member on the member's own server: still 404 (a Person, not the
        # instance actor, and not a member).
        url = f"{coop}/events.ics"
        assert (await served(url, otto.signed("GET", url)))[0] == 404

        # A member's Join is accepted by the organiser; a non-member's is ignored.
        for who in (otto, mona):
            join = {"@context": CONTEXT, "id": f"{peer.base}/joins/{who.name}", "type": "Join",
                    "actor": who.id, "object": uri}
            assert (await who.post(f"{a.base}/inbox", join))[0] == 202
        accepts = await wait_received(peer, 3, "Accept")  # 2 memberships, then the RSVP
        accept = next(x for x in accepts if x["object"].get("type") == "Join")
        assert accept["actor"] == alice and accept["to"] == [mona.id]
        assert accept["object"]["id"] == f"{peer.base}/joins/mona"
        assert accept["object"]["type"] == "Join" and accept["object"]["object"] == uri
        assert await rsvp_state(a, uri, mona.id) == "accepted"

        async def otto_refused() -> bool:
            async with a.session() as s:
                q = select(InboxItem.result).where(
                    InboxItem.activity_uri == f"{peer.base}/joins/otto")
                return "may not see" in ((await s.execute(q)).scalar() or "")

        await eventually(otto_refused, what="non-member's Join ignored")
        assert await rsvp_state(a, uri, otto.id) is None
        # The meeting (capacity 1) is now full: nina's Join is answered Reject{Join}.
        join = {"@context": CONTEXT, "id": f"{peer.base}/joins/nina", "type": "Join",
                "actor": nina.id, "object": uri}
        assert (await nina.post(f"{a.base}/inbox", join))[0] == 202
        reject = (await wait_received(peer, 1, "Reject"))[0]
        assert reject["actor"] == alice and reject["object"]["id"] == join["id"]
        assert await rsvp_state(a, uri, nina.id) is None
        assert (await served(uri, {**AS2, **mona.signed("GET", uri)}))[1]["participantCount"] == 1
    finally:
        await peer.stop()
