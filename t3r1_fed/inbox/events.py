"""Meetings over federation: Join / Leave of our Events, Accept / Reject of our Joins,
Update of a remote Event, and the `events` row kept for every remote Event (t3r1,
Mobilizon, FEP-8a8e) through an ingest hook.

Join and Leave of a cooperative are handled by inbox/membership.py, which hands those of
anything else to the (Join|Leave, Event) handlers registered here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.coops.events import (
    ADDRESS_FIELDS,
    EventError,
    check_timezone,
    event_of,
    is_full,
    may_attend,
    refresh_counts,
)
from t3r1_fed.coops.kinds import on_ingest
from t3r1_fed.db.models import Actor, Object
from t3r1_fed.db.models_coops import Event, EventRsvp
from t3r1_fed.inbox import content
from t3r1_fed.inbox.dispatch import Ignored, Inbound, handles
from t3r1_fed.inbox.objects import stored_object
from t3r1_fed.inbox.social import remote_actor
from t3r1_fed.outbox.publish import publish
from t3r1_fed.vocab.shapes import as_list, datetime_field, http_url, id_of, int_field, str_field


async def _our_event(inb: Inbound) -> Object:
    oid = inb.act.object_id
    if not oid or not inb.ctx.uris.is_local(oid):
        raise Ignored("join/leave of something that is not ours")
    obj = await stored_object(inb.session, oid)
    if obj is None or not obj.local:
        raise Ignored("join/leave of an unknown object")
    try:
        await event_of(inb.session, obj)
    except EventError as e:
        raise Ignored(str(e)) from e
    return obj


async def _answer(inb: Inbound, obj: Object, participant: Actor, kind: str) -> None:
    """Accept/Reject{Join} by the organiser, echoing the Join (Mobilizon matches its id)."""
    organiser = await inb.session.get(Actor, obj.author_id)
    assert organiser is not None
    answer = {
        "id": inb.ctx.uris.activity(),
        "type": kind,
        "actor": organiser.uri,
        "object": {"id": inb.act.id, "type": "Join", "actor": participant.uri, "object": obj.uri},
        "to": [participant.uri],
    }
    await publish(inb.ctx, inb.session, organiser, answer, recipients=[participant], public=False)


@handles("Join", "Event")
async def on_join_event(inb: Inbound) -> str:
    obj = await _our_event(inb)
    ev = await event_of(inb.session, obj)
    participant = await remote_actor(inb)
    if not await may_attend(inb.session, obj, participant):
        raise Ignored("join of a meeting the actor may not see")
    q = select(EventRsvp).where(EventRsvp.event_id == obj.id, EventRsvp.actor_id == participant.id)
    row = (await inb.session.execute(q)).scalar()
    if row is not None:
        row.uri = inb.act.id  # the Accept echoes the newest Join
        await _answer(inb, obj, participant, "Accept")
        return "join repeated: accepted again"
    if await is_full(inb.session, obj, ev):
        await _answer(inb, obj, participant, "Reject")
        return "join refused: meeting full"
    inb.session.add(
        EventRsvp(event_id=obj.id, actor_id=participant.id, uri=inb.act.id, state="accepted")
    )
    await inb.session.flush()
    n = await refresh_counts(inb.session, obj)
    await _answer(inb, obj, participant, "Accept")
    return f"rsvp accepted ({n} participants)"


@handles("Leave", "Event")
async def on_leave_event(inb: Inbound) -> str:
    obj = await _our_event(inb)
    actor = (await inb.session.execute(select(Actor).where(Actor.uri == inb.act.actor))).scalar()
    if actor is None:
        raise Ignored("leave from an unknown actor")
    q = select(EventRsvp).where(EventRsvp.event_id == obj.id, EventRsvp.actor_id == actor.id)
    row = (await inb.session.execute(q)).scalar()
    if row is None:
        raise Ignored("leave from a non-participant")
    await inb.session.delete(row)
    await inb.session.flush()
    n = await refresh_counts(inb.session, obj)
    return f"rsvp withdrawn ({n} participants)"


async def _our_join(inb: Inbound) -> tuple[EventRsvp, Object]:
    """The pending RSVP of a local member answered by this Accept/Reject, checked to come
    from the meeting's organiser or its group."""
    jid = inb.act.object_id
    row = None
    if jid:
        row = (await inb.session.execute(select(EventRsvp).where(EventRsvp.uri == jid))).scalar()
    if row is None:
        raise Ignored("answer to an unknown follow or join")
    obj = await inb.session.get(Object, row.event_id)
    assert obj is not None
    allowed = {obj.author_id, obj.group_id}
    answerer = (await inb.session.execute(select(Actor).where(Actor.uri == inb.act.actor))).scalar()
    if answerer is None or answerer.id not in allowed:
        raise Ignored("join answered by someone other than the organiser")
    embedded = inb.act.object
    if isinstance(embedded, dict) and id_of(embedded.get("object")) not in (None, obj.uri):
        raise Ignored("answer names another meeting")
    return row, obj


@handles("Accept", "Join")
async def on_accept_join(inb: Inbound) -> str:
    row, _ = await _our_join(inb)
    row.state = "accepted"
    return "rsvp accepted by the organiser"


@handles("Reject", "Join")
async def on_reject_join(inb: Inbound) -> str:
    row, _ = await _our_join(inb)
    await inb.session.delete(row)
    return "rsvp refused by the organiser"


@handles("Update", "Event")
async def on_update_event(inb: Inbound) -> str:
    """A remote organiser changed a meeting: same rules as any content update."""
    return await content.on_update_object(inb)


# ---- remote Event documents ----------------------------------------------------------------------


def _text(v: Any, limit: int) -> str | None:
    return v.strip()[:limit] or None if isinstance(v, str) else None


def parse_location(doc: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(place name, one-line address) of an Event's `location` (Place, string, or list)."""
    place = next(iter(as_list(doc.get("location"))), None)
    if isinstance(place, str):
        return _text(place, 512), None
    if not isinstance(place, Mapping) or place.get("type") == "VirtualLocation":
        return None, None
    address = place.get("address")
    if isinstance(address, Mapping):
        line = ", ".join(s for s in (_text(address.get(k), 200) for k in ADDRESS_FIELDS) if s)
    else:
        line = _text(address, 1000) or ""
    return _text(place.get("name"), 512), line or None


def parse_online_url(doc: Mapping[str, Any]) -> str | None:
    """The online meeting link: a FEP-8a8e VirtualLocation, or Mobilizon's Link attachment."""
    for place in as_list(doc.get("location")):
        if isinstance(place, Mapping) and place.get("type") == "VirtualLocation":
            url = http_url(place.get("url"))
            if url:
                return url
    if doc.get("isOnline") is not True:
        return None
    for item in as_list(doc.get("attachment"))[:20]:
        if isinstance(item, Mapping) and item.get("type") == "Link":
            url = http_url(item.get("href"))
            if url:
                return url
    return None


@on_ingest("Event")
async def ingest_event(
    ctx: Context, session: AsyncSession, row: Object, raw: Mapping[str, Any]
) -> None:
    """Keep an `events` row for a remote Event (created or updated)."""
    start = datetime_field(raw.get("startTime"))
    if start is None:
        return  # not a usable meeting: stored as a plain object
    row.kind = "event"
    await session.flush()
    ev = await session.get(Event, row.id)
    if ev is None:
        ev = Event(object_id=row.id, start_time=start)
        session.add(ev)
    end = datetime_field(raw.get("endTime"))
    tz = str_field(raw, "timezone", 64)
    try:
        tz = check_timezone(tz)
    except EventError:
        tz = None
    place, address = parse_location(raw)
    cap = int_field(raw.get("maximumAttendeeCapacity"))
    ev.start_time, ev.end_time, ev.timezone = start, end if end and end > start else None, tz
    ev.location_name, ev.location_address = place, address
    ev.online_url, ev.capacity = parse_online_url(raw), cap or None
    await session.flush()
