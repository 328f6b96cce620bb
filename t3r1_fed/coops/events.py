"""Meetings: `Event` objects (FEP-8a8e, Mobilizon's shape) and RSVPs, as a service API.

A local member creates a meeting in a cooperative through `create_in_coop(kind="event")`
plus an `events` row. The document carries `startTime`, `endTime`, `timezone` (IANA),
a physical `location` (`Place` with a schema.org `PostalAddress`) and/or an online link
(`isOnline` + an `attachment` Link, as Mobilizon does), `joinMode: free`,
`participantCount` and the capacity terms. Mastodon shows it as title + link.

RSVP is `Join{object: event}` answered `Accept{Join}` by the organiser (the event's
author), withdrawn by `Leave{object: event}`. Counts are rewritten into the stored
document, so they are right whenever the event is dereferenced; no `Update` is sent per
RSVP (that would mark the post "edited" on every follower's timeline for each reply).
Remote events (ours, Mobilizon) get an `events` row from their document (an ingest hook
in inbox/events.py). The organiser or a moderator reschedules with `Update{Event}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.coops.access import can_read
from t3r1_fed.coops.editing import EditError, publish_edit
from t3r1_fed.coops.posting import PostRefused, coop_for_actor, create_in_coop
from t3r1_fed.coops.roles import is_moderator
from t3r1_fed.db.models import Actor, Coop, Object
from t3r1_fed.db.models_coops import Event, EventRsvp
from t3r1_fed.outbox.publish import publish
from t3r1_fed.vocab.sanitize import text_to_html
from t3r1_fed.vocab.shapes import http_url, int_field

MAX_TITLE = 200
MAX_DESCRIPTION = 10_000
ADDRESS_FIELDS = (
    "streetAddress",
    "postalCode",
    "addressLocality",
    "addressRegion",
    "addressCountry",
)


class EventError(ValueError):
    """A meeting action that cannot be done; the message says why."""


@dataclass(frozen=True)
class PostalAddress:
    street: str | None = None
    postal_code: str | None = None
    locality: str | None = None
    region: str | None = None
    country: str | None = None

    def values(self) -> list[str | None]:
        return [self.street, self.postal_code, self.locality, self.region, self.country]

    def one_line(self) -> str:
        return ", ".join(v for v in self.values() if v)

    def as_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"type": "PostalAddress"}
        doc.update({k: v for k, v in zip(ADDRESS_FIELDS, self.values(), strict=True) if v})
        return doc


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_timezone(name: str | None) -> str | None:
    if not name:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise EventError(f"unknown timezone {name!r}") from e
    return name


def event_document(
    *,
    name: str,
    description: str,
    start: datetime,
    end: datetime | None,
    timezone: str | None,
    place_name: str | None,
    address: PostalAddress | None,
    online_url: str | None,
    capacity: int | None,
) -> dict[str, Any]:
    """The type-specific part of an Event (create_in_coop adds id, author, addressing)."""
    doc: dict[str, Any] = {
        "type": "Event",
        "name": name,
        "content": text_to_html(description) if description else "",
        "startTime": iso(start),
        "joinMode": "free",
        "participantCount": 0,
        "isOnline": online_url is not None,
        "commentsEnabled": True,
    }
    if end is not None:
        doc["endTime"] = iso(end)
    if timezone:
        doc["timezone"] = timezone
    if place_name or address:
        label = place_name or (address.one_line() if address is not None else "")
        place: dict[str, Any] = {"type": "Place", "name": label}
        if address is not None:
            place["address"] = address.as_json()
        doc["location"] = place
    if online_url:
        doc["attachment"] = [
            {"type": "Link", "name": "Website", "mediaType": "text/html", "href": online_url}
        ]
    if capacity is not None:
        doc["maximumAttendeeCapacity"] = capacity
        doc["remainingAttendeeCapacity"] = capacity
    return doc


@dataclass(frozen=True)
class Meeting:
    """What a member fills in to schedule (or reschedule) a meeting."""

    name: str
    start: datetime
    end: datetime | None = None
    timezone: str | None = None
    description: str = ""
    place_name: str | None = None
    address: PostalAddress | None = None
    online_url: str | None = None
    capacity: int | None = None

    def document(self) -> dict[str, Any]:
        """The validated type-specific JSON (EventError on bad input)."""
        name, end = self.name.strip(), self.end
        if not name or len(name) > MAX_TITLE:
            raise EventError(f"a meeting needs a title of 1 to {MAX_TITLE} characters")
        if len(self.description) > MAX_DESCRIPTION:
            raise EventError(f"description longer than {MAX_DESCRIPTION} characters")
        if self.start.tzinfo is None or (end is not None and end.tzinfo is None):
            raise EventError("start and end times must carry a timezone")
        if end is not None and end <= self.start:
            raise EventError("a meeting must end after it starts")
        if self.online_url is not None and http_url(self.online_url) is None:
            raise EventError("the online link must be an http(s) URL")
        if self.capacity is not None and self.capacity < 1:
            raise EventError("capacity must be at least 1")
        return event_document(
            name=name,
            description=self.description.strip(),
            start=self.start,
            end=end,
            timezone=check_timezone(self.timezone),
            place_name=self.place_name,
            address=self.address,
            online_url=self.online_url,
            capacity=self.capacity,
        )

    def fill(self, ev: Event, doc: dict[str, Any]) -> None:
        ev.start_time, ev.end_time, ev.timezone = self.start, self.end, doc.get("timezone")
        ev.location_name = doc.get("location", {}).get("name")
        ev.location_address = self.address.one_line() if self.address else None
        ev.online_url, ev.capacity = self.online_url, self.capacity


async def create_event(
    ctx: Context,
    session: AsyncSession,
    author: Actor,
    group: Actor,
    coop: Coop,
    *,
    name: str,
    start: datetime,
    **details: Any,
) -> Object:
    """A local member schedules a meeting in a local cooperative (`details`: the other
    fields of `Meeting`)."""
    meeting = Meeting(name, start, **details)
    doc = meeting.document()
    try:
        row = await create_in_coop(ctx, session, author, group, coop, doc, kind="event")
    except PostRefused as e:
        raise EventError(str(e)) from e
    ev = Event(object_id=row.id, start_time=start)
    meeting.fill(ev, doc)
    session.add(ev)
    await session.flush()
    return row


# Properties of an Event that a reschedule may drop (an online meeting becoming physical …).
OPTIONAL_KEYS = (
    "endTime",
    "timezone",
    "location",
    "attachment",
    "maximumAttendeeCapacity",
    "remainingAttendeeCapacity",
)


async def reschedule_event(
    ctx: Context, session: AsyncSession, editor: Actor, obj: Object, meeting: Meeting
) -> Object:
    """The organiser or a moderator changes a meeting of ours: `Update{Event}` by the
    editor, announced by the cooperative (receivers take it from our copy)."""
    ev = await event_of(session, obj)
    if not obj.local:
        raise EventError("only meetings of this instance can be changed here")
    moderator = obj.group_id is not None and await is_moderator(session, obj.group_id, editor.id)
    if editor.id != obj.author_id and not moderator:
        raise EventError("only the organiser or a moderator may change this meeting")
    changes = meeting.document()
    n = await accepted_count(session, obj)
    changes["participantCount"] = n
    if meeting.capacity:
        changes["remainingAttendeeCapacity"] = max(meeting.capacity - n, 0)
    kept = {k: v for k, v in orjson.loads(obj.raw).items() if k not in OPTIONAL_KEYS}
    obj.raw = orjson.dumps(kept).decode()
    try:
        await publish_edit(ctx, session, editor, obj, changes)
    except EditError as e:
        raise EventError(str(e)) from e
    meeting.fill(ev, changes)
    await session.flush()
    return obj


# ---- reading ---------------------------------------------------------------------------------


async def event_of(session: AsyncSession, obj: Object) -> Event:
    ev = await session.get(Event, obj.id)
    if ev is None or obj.deleted_at is not None:
        raise EventError("not a meeting")
    return ev


async def event_by_uri(session: AsyncSession, uri: str) -> tuple[Object, Event]:
    obj = (await session.execute(select(Object).where(Object.uri == uri))).scalar()
    if obj is None:
        raise EventError("no such meeting")
    return obj, await event_of(session, obj)


async def accepted_count(session: AsyncSession, obj: Object) -> int:
    q = (
        select(func.count())
        .select_from(EventRsvp)
        .where(EventRsvp.event_id == obj.id, EventRsvp.state == "accepted")
    )
    return int((await session.execute(q)).scalar_one())


async def attendee_count(session: AsyncSession, obj: Object) -> int:
    """Participants: counted here for our meetings, as published by the origin otherwise."""
    if obj.local:
        return await accepted_count(session, obj)
    published = int_field(orjson.loads(obj.raw).get("participantCount"))
    return published if published is not None else await accepted_count(session, obj)


async def refresh_counts(session: AsyncSession, obj: Object) -> int:
    """Write the current participant count into a local meeting's served document."""
    n = await accepted_count(session, obj)
    doc = orjson.loads(obj.raw)
    doc["participantCount"] = n
    cap = int_field(doc.get("maximumAttendeeCapacity"))
    if cap:
        doc["remainingAttendeeCapacity"] = max(cap - n, 0)
    obj.raw = orjson.dumps(doc).decode()
    return n


async def is_full(session: AsyncSession, obj: Object, ev: Event) -> bool:
    return ev.capacity is not None and await accepted_count(session, obj) >= ev.capacity


async def coop_events(
    session: AsyncSession, group: Actor, *, upcoming_only: bool = False, now: datetime | None = None
) -> list[tuple[Object, Event]]:
    """A cooperative's meetings: upcoming ones first (soonest first), then past ones
    (most recent first)."""
    now = now or datetime.now(UTC)
    q = (
        select(Object, Event)
        .join(Event, Event.object_id == Object.id)
        .where(
            Object.group_id == group.id, Object.deleted_at.is_(None), Object.removed_at.is_(None)
        )
    )
    rows = [(o, e) for o, e in (await session.execute(q)).all()]
    upcoming = sorted(
        (r for r in rows if (r[1].end_time or r[1].start_time) >= now),
        key=lambda r: r[1].start_time,
    )
    if upcoming_only:
        return upcoming
    past = sorted(
        (r for r in rows if (r[1].end_time or r[1].start_time) < now),
        key=lambda r: r[1].start_time,
        reverse=True,
    )
    return upcoming + past


# ---- RSVP by local members ---------------------------------------------------------------------


async def _rsvp(session: AsyncSession, obj: Object, actor: Actor) -> EventRsvp | None:
    q = select(EventRsvp).where(EventRsvp.event_id == obj.id, EventRsvp.actor_id == actor.id)
    return (await session.execute(q)).scalar()


async def may_attend(session: AsyncSession, obj: Object, actor: Actor) -> bool:
    """Can `actor` see (and so join) this meeting of ours?"""
    if obj.group_id is None:
        return obj.visibility in {"public", "unlisted"}
    group = await session.get(Actor, obj.group_id)
    if group is None:
        return False
    return await can_read(session, group, await coop_for_actor(session, group.id), actor.uri)


async def join_event(ctx: Context, session: AsyncSession, member: Actor, obj: Object) -> EventRsvp:
    """A local member takes part: at once for our meetings; for a remote one a `Join` goes
    to the organiser and the RSVP stays pending until its `Accept`."""
    ev = await event_of(session, obj)
    existing = await _rsvp(session, obj, member)
    if existing is not None:
        return existing
    if obj.local:
        if not await may_attend(session, obj, member):
            raise EventError("no such meeting")
        if await is_full(session, obj, ev):
            raise EventError("this meeting is full")
        row = EventRsvp(
            event_id=obj.id, actor_id=member.id, uri=ctx.uris.activity(), state="accepted"
        )
        session.add(row)
        await session.flush()
        await refresh_counts(session, obj)
        return row
    organiser = await session.get(Actor, obj.author_id)
    assert organiser is not None
    join = {
        "id": ctx.uris.activity(),
        "type": "Join",
        "actor": member.uri,
        "object": obj.uri,
        "to": [organiser.uri],
    }
    row = EventRsvp(event_id=obj.id, actor_id=member.id, uri=join["id"], state="pending")
    session.add(row)
    await session.flush()
    await publish(ctx, session, member, join, recipients=[organiser], public=False)
    return row


async def leave_event(ctx: Context, session: AsyncSession, member: Actor, obj: Object) -> None:
    """A local member withdraws (a `Leave` to the organiser of a remote meeting)."""
    await event_of(session, obj)
    row = await _rsvp(session, obj, member)
    if row is None:
        raise EventError("not taking part in this meeting")
    await session.delete(row)
    await session.flush()
    if obj.local:
        await refresh_counts(session, obj)
        return
    organiser = await session.get(Actor, obj.author_id)
    assert organiser is not None
    leave = {
        "id": ctx.uris.activity(),
        "type": "Leave",
        "actor": member.uri,
        "object": obj.uri,
        "to": [organiser.uri],
    }
    await publish(ctx, session, member, leave, recipients=[organiser], public=False)
