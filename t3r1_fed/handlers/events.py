"""HTTP for meetings: a cooperative's `events` collection and iCalendar exports.

- `GET /c/{name}/events`: OrderedCollection of the cooperative's Events, upcoming first
  (soonest first), then past ones; pages `?page=N` embed the Event documents.
- `GET /c/{name}/events.ics`: the upcoming meetings as an RFC 5545 calendar.
- `GET /o/{oid}/event.ics`: one meeting as an RFC 5545 calendar.
A private cooperative's meetings need a signed request that `can_read` accepts (404
otherwise, never 403).
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from aiohttp import web
from sqlalchemy import select

from t3r1_fed.actors.documents import register_group_collection
from t3r1_fed.appkeys import CTX
from t3r1_fed.coops.access import can_read, readable_coop
from t3r1_fed.coops.events import coop_events
from t3r1_fed.coops.ical import IcsEvent, calendar
from t3r1_fed.db.models import Actor, Coop, Object
from t3r1_fed.db.models_coops import Event
from t3r1_fed.federation.verifier import signed_requester
from t3r1_fed.httputil import as2_response, json_error
from t3r1_fed.vocab.context import AS_CONTEXT
from t3r1_fed.vocab.sanitize import plain_text

PAGE_SIZE = 20
ICS_LIMIT = 200

register_group_collection("events")


def _doc(obj: Object) -> dict[str, Any]:
    return {k: v for k, v in orjson.loads(obj.raw).items() if k != "@context"}


async def events_collection(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    async with ctx.sessions() as session:
        found = await readable_coop(request.app[CTX], request, session)
        if found is None:
            return json_error(404, "no such cooperative")
        group, _ = found
        rows = await coop_events(session, group)
    coll = ctx.uris.sub(group.uri, "events")
    page = request.query.get("page", "")
    if not page.isdigit() or int(page) < 1:
        return as2_response(
            {
                "@context": AS_CONTEXT,
                "id": coll,
                "type": "OrderedCollection",
                "totalItems": len(rows),
                "first": f"{coll}?page=1",
            }
        )
    n = int(page)
    chunk = rows[(n - 1) * PAGE_SIZE : n * PAGE_SIZE]
    doc: dict[str, Any] = {
        "@context": AS_CONTEXT,
        "id": f"{coll}?page={n}",
        "type": "OrderedCollectionPage",
        "partOf": coll,
        "orderedItems": [_doc(obj) for obj, _ in chunk],
    }
    if n * PAGE_SIZE < len(rows):
        doc["next"] = f"{coll}?page={n + 1}"
    if n > 1:
        doc["prev"] = f"{coll}?page={n - 1}"
    return as2_response(doc)


_BREAKS = re.compile(r"<br\s*/?>|</p>|</li>|</h[1-6]>", re.IGNORECASE)


def html_to_lines(html: str) -> str:
    """Text of sanitised HTML, keeping paragraphs and line breaks as newlines."""
    parts = (plain_text(p) for p in _BREAKS.split(html))
    return "\n".join(p for p in parts if p)


def ics_event(obj: Object, ev: Event, organiser: Actor | None) -> IcsEvent:
    location = ", ".join(x for x in (ev.location_name, ev.location_address) if x)
    if ev.online_url:
        location = f"{location} ({ev.online_url})" if location else ev.online_url
    return IcsEvent(
        uid=obj.uri,
        start=ev.start_time,
        end=ev.end_time,
        summary=obj.name or "Réunion",
        description=html_to_lines(obj.content or ""),
        location=location or None,
        url=obj.url or obj.uri,
        timezone=ev.timezone,
        stamp=obj.updated or obj.published,
        organizer_name=(organiser.name or organiser.username) if organiser else None,
        organizer_uri=organiser.uri if organiser else None,
    )


def _ics_response(text: str, filename: str) -> web.Response:
    return web.Response(
        body=text.encode(),
        content_type="text/calendar",
        charset="utf-8",
        headers={"Content-Disposition": f'inline; filename="{filename}"'},
    )


async def coop_ics(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    async with ctx.sessions() as session:
        found = await readable_coop(request.app[CTX], request, session)
        if found is None:
            return json_error(404, "no such cooperative")
        group, _ = found
        rows = (await coop_events(session, group, upcoming_only=True))[:ICS_LIMIT]
        items = [ics_event(o, e, await session.get(Actor, o.author_id)) for o, e in rows]
    text = calendar(items, name=group.name or group.username)
    return _ics_response(text, f"{group.username}.ics")


async def event_ics(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    async with ctx.sessions() as session:
        q = (
            select(Object, Event)
            .join(Event, Event.object_id == Object.id)
            .where(
                Object.uri == ctx.uris.object(request.match_info["oid"]),
                Object.local.is_(True),
                Object.deleted_at.is_(None),
            )
        )
        found = (await session.execute(q)).first()
        if found is None:
            return json_error(404, "no such meeting")
        obj, ev = found
        group = await session.get(Actor, obj.group_id) if obj.group_id else None
        coop = await session.get(Coop, group.id) if group else None
        requester = await signed_requester(ctx, request)
        visible = obj.visibility in {"public", "unlisted"}
        if group is not None:
            visible = await can_read(session, group, coop, requester)
        if not visible:
            return json_error(404, "no such meeting")
        item = ics_event(obj, ev, await session.get(Actor, obj.author_id))
    return _ics_response(calendar([item]), "reunion.ics")


def routes(router: web.UrlDispatcher) -> None:
    router.add_get("/c/{name}/events", events_collection)
    router.add_get("/c/{name}/events.ics", coop_ics)
    router.add_get("/o/{oid}/event.ics", event_ics)
