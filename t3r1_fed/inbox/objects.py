"""Storing remote content objects: fetch from origin, validate ownership, upsert.

An existing object is only ever changed by its stored author (CVE-2024-37903), and an
object's author must live on the object's host.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.coops.kinds import kind_of, run_ingest
from t3r1_fed.db.models import Actor, Object, utcnow
from t3r1_fed.federation.hosts import host_of
from t3r1_fed.federation.resolver import ResolveError, fetch_document, get_actor
from t3r1_fed.vocab.normalize import InvalidObject, RemoteObject, parse_object

CONTENT_TYPES = frozenset(
    {"Note", "Article", "Page", "Question", "Event", "Video", "Image", "Audio", "Document"}
)
# How far up an inReplyTo chain we walk or fetch (INTEROP §7.15).
MAX_REPLY_DEPTH = 16


class Refused(Exception):
    """The object is not acceptable; the message says why (recorded, never raised to HTTP)."""


def parse_dt(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


async def stored_object(session: AsyncSession, uri: str) -> Object | None:
    return (await session.execute(select(Object).where(Object.uri == uri))).scalar()


def parse_content(doc: dict[str, Any], author: Actor | None = None) -> RemoteObject:
    try:
        obj = parse_object(doc, followers_url=author.followers_url if author else None)
    except InvalidObject as e:
        raise Refused(f"invalid object: {e}") from e
    if obj.type not in CONTENT_TYPES:
        raise Refused(f"unsupported object type {obj.type}")
    if not obj.attributed_to:
        raise Refused("object has no attributedTo")
    try:
        same_host = host_of(obj.attributed_to) == host_of(obj.id)
    except ValueError as e:
        raise Refused(f"unusable host: {e}") from e
    if not same_host:
        raise Refused("attributedTo is not on the object's host")
    return obj


async def fetch_remote_object(
    ctx: Context, session: AsyncSession, uri: str
) -> tuple[RemoteObject, dict[str, Any]]:
    if ctx.uris.is_local(uri):
        raise Refused("local object is not stored")
    try:
        doc = await fetch_document(ctx, session, uri)
    except ResolveError as e:
        raise Refused(str(e)) from e
    return parse_content(doc), doc


async def upsert_object(
    ctx: Context,
    session: AsyncSession,
    obj: RemoteObject,
    raw: dict[str, Any],
    *,
    group: Actor | None = None,
) -> Object:
    """Store or update a remote object; the author is fetched (and cached) if needed."""
    try:
        author = await get_actor(ctx, session, obj.attributed_to or "")
    except ResolveError as e:
        raise Refused(f"author: {e}") from e
    row = await stored_object(session, obj.id)
    if row is not None:
        if row.author_id != author.id:
            raise Refused("object belongs to another author")
        if row.deleted_at is not None:
            raise Refused("object was deleted")
        _apply(row, obj, raw)
        if group is not None and row.group_id is None:
            row.group_id = group.id
        await run_ingest(ctx, session, row, raw)
        return row
    row = Object(
        uri=obj.id,
        local=False,
        author_id=author.id,
        group_id=group.id if group else None,
        kind=kind_of(raw),
    )
    _apply(row, obj, raw)
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        existing = await stored_object(session, obj.id)
        if existing is None or existing.author_id != author.id:
            raise Refused("object stored concurrently by another author") from None
        return existing
    await run_ingest(ctx, session, row, raw)
    return row


def _apply(row: Object, obj: RemoteObject, raw: dict[str, Any]) -> None:
    row.type = obj.type
    row.name = obj.name[:512] if obj.name else None
    row.summary = obj.summary
    row.content = obj.content_html
    row.language = obj.language
    row.url = obj.url
    row.in_reply_to = obj.in_reply_to
    row.context = obj.context
    row.visibility = obj.visibility
    row.sensitive = obj.sensitive
    row.raw = orjson.dumps(raw).decode()
    row.published = parse_dt(obj.published) or row.published or utcnow()
    row.updated = parse_dt(obj.updated)


async def resolve_object(
    ctx: Context, session: AsyncSession, uri: str, *, group: Actor | None = None
) -> Object:
    """The stored object at `uri`, fetched from its origin and stored if we lack it."""
    row = await stored_object(session, uri)
    if row is not None:
        if row.deleted_at is not None:
            raise Refused("object was deleted")
        return row
    obj, raw = await fetch_remote_object(ctx, session, uri)
    return await upsert_object(ctx, session, obj, raw, group=group)
