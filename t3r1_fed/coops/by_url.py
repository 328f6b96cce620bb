"""A meeting or a consultation named by its URL, local or remote, for a member to answer.

`t3r1 admin rsvp` and `t3r1 admin vote` take any URL: an object we hold is used as it is;
another server's is fetched through the resolver (signed by our instance actor), checked
(it must be an `Event`, resp. a `Question`, owned by an actor of its own host) and stored
like any remote object, so the ingest hooks file it (inbox/events.py, inbox/polls.py)
before the member's `Join` or vote `Note` goes to its organiser.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.db.models import Object
from t3r1_fed.inbox.objects import Refused, fetch_remote_object, stored_object, upsert_object

WHAT: Final = {"Event": "meeting", "Question": "poll"}


class TargetError(ValueError):
    """The URL does not designate what was asked; the message says why."""


async def object_by_url(ctx: Context, session: AsyncSession, uri: str, as_type: str) -> Object:
    """The live object of type `as_type` ('Event' or 'Question') at `uri`."""
    what = WHAT[as_type]
    uri = uri.strip()
    row = await stored_object(session, uri)
    if row is not None:
        if row.deleted_at is not None:
            raise TargetError(f"this {what} was deleted: {uri}")
        if row.type != as_type:
            raise TargetError(f"{uri} is a {row.type}, not a {what} ({as_type})")
        return row
    if not uri.startswith(("http://", "https://")):
        raise TargetError(f"not a URL: {uri}")
    if ctx.uris.is_local(uri):
        raise TargetError(f"no such {what} here: {uri}")
    try:
        obj, raw = await fetch_remote_object(ctx, session, uri)
    except Refused as e:
        raise TargetError(f"{uri} is not a {what} ({as_type}) we can fetch: {e}") from e
    if obj.type != as_type:
        raise TargetError(f"{uri} is a {obj.type}, not a {what} ({as_type})")
    try:
        return await upsert_object(ctx, session, obj, raw)
    except Refused as e:
        raise TargetError(f"{uri}: {e}") from e


async def event_by_url(ctx: Context, session: AsyncSession, uri: str) -> Object:
    return await object_by_url(ctx, session, uri, "Event")


async def poll_by_url(ctx: Context, session: AsyncSession, uri: str) -> Object:
    return await object_by_url(ctx, session, uri, "Question")
