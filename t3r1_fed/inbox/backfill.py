"""FEP-f228: backfilling remote threads from their FEP-7888 `context` collection.

Triggers: a remote reply (Note/Article/Page) is stored whose thread root we do not hold
(its parent is unknown, so `thread_id` stays empty) and whose `context` is a remote URL;
or a signed-in member opens a remote post's thread in a client
(`GET /api/v1/statuses/:id/context`, as Mastodon 4.4 refreshes threads). Either only
records a request (`context_backfills`); the worker does the fetching, never the request
path. One context is
fetched at most once per `BACKFILL_INTERVAL`: a request during that window is scheduled
for its end.

The worker (`run`) claims due contexts with a lease and, for each:
1. reads the collection (`OrderedCollection`/`Collection`, items inline or paged through
   `first`/`next`, pages on the collection's host only), signed by our instance actor
   through the SafeHttpClient (https only unless `allow_http`, SSRF guard, size and time
   caps), at most `MAX_PAGES` pages and `MAX_ITEMS` items, within `TIME_BUDGET` seconds;
2. takes each item — an object, an activity (`Create`: its object) or an id — skips what we
   already hold, uses an embedded object only when it lives on the collection's host, and
   fetches every other one from its origin (as inbox/objects.py does);
3. stores the missing posts in one transaction, parents first, through the ordinary ingest
   path (`upsert_object`: author checks, sanitising, kinds, threading hooks), filed in the
   reply's cooperative when they carry the same `context` and the collection (if it says)
   is owned by that cooperative; then threads the posts that were waiting for their root.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.coops.kinds import on_ingest
from t3r1_fed.db.models import Actor, Object, utcnow
from t3r1_fed.db.models_coops import ContextBackfill
from t3r1_fed.federation.hosts import host_of
from t3r1_fed.federation.http_client import FetchError
from t3r1_fed.federation.resolver import ResolveError, get_actor, instance_signer
from t3r1_fed.federation.signing import Signer
from t3r1_fed.inbox.forum import FORUM_KINDS  # its threading hook runs before ours
from t3r1_fed.inbox.objects import Refused, parse_content, stored_object, upsert_object
from t3r1_fed.vocab.normalize import RemoteObject, id_of

log = logging.getLogger("t3r1.backfill")

BACKFILL_INTERVAL = timedelta(minutes=10)  # per context
MAX_ITEMS = 200  # items read from one collection
MAX_PAGES = 10  # pages read from one collection
TIME_BUDGET = 60.0  # seconds of fetching for one context
LEASE = timedelta(seconds=TIME_BUDGET * 2)
CLAIM_BATCH = 5
BACKFILLING = "t3r1_backfilling"  # session.info flag: our own stores request nothing

COLLECTION_TYPES = frozenset(
    {"Collection", "OrderedCollection", "CollectionPage", "OrderedCollectionPage"}
)
ACTIVITY_TYPES = frozenset({"Create", "Update", "Announce"})


class BackfillError(Exception):
    """The context collection cannot be used; the message says why."""


# ---- requests -------------------------------------------------------------------------------


async def request_backfill(session: AsyncSession, context: str, group_id: int | None) -> bool:
    """Ask for `context` to be fetched: now, or when its rate limit allows. True if this
    call scheduled it (False: already due)."""
    now = utcnow()
    q = select(ContextBackfill).where(ContextBackfill.context == context)
    row = (await session.execute(q)).scalar()
    if row is None:
        try:
            async with session.begin_nested():
                session.add(ContextBackfill(context=context, group_id=group_id, due_at=now,
                                            stored_items=0))
            return True
        except IntegrityError:  # requested concurrently
            return False
    if row.due_at is not None:
        return False
    if row.group_id is None:
        row.group_id = group_id
    earliest = row.fetched_at + BACKFILL_INTERVAL if row.fetched_at else now
    row.due_at = max(now, earliest)
    return True


def _remote_context(ctx: Context, row: Object) -> str | None:
    context = row.context
    if not context or context == row.uri or ctx.uris.is_local(context):
        return None
    schemes = ("https://", "http://") if ctx.settings.allow_http else ("https://",)
    if not context.startswith(schemes):
        return None  # FEP-7888 contexts may be tag: URIs or the like: nothing to fetch
    return context


@on_ingest("Note", "Article", "Page")
async def _reply_without_root(
    ctx: Context, session: AsyncSession, row: Object, raw: Mapping[str, Any]
) -> None:
    """After inbox/forum.py threaded `row`: a remote reply whose root we lack asks for its
    context to be backfilled."""
    del raw
    if session.info.get(BACKFILLING) or row.local or not row.in_reply_to:
        return
    if row.thread_id is not None or row.deleted_at is not None or row.kind not in FORUM_KINDS:
        return
    context = _remote_context(ctx, row)
    if context is not None:
        await request_backfill(session, context, row.group_id)


async def thread_opened(ctx: Context, obj: Object) -> bool:
    """A local member opens a remote post's thread (GET /api/v1/statuses/:id/context):
    its context is backfilled by the worker, rate-limited like any other request. True if
    this call scheduled it."""
    context = None if obj.local else _remote_context(ctx, obj)
    if context is None:
        return False
    async with ctx.sessions() as session, session.begin():
        return await request_backfill(session, context, obj.group_id)


# ---- reading the collection -------------------------------------------------------------------


@dataclass
class Collected:
    owner: str | None  # the collection's attributedTo, if it names one
    objects: list[tuple[RemoteObject, dict[str, Any]]]
    read: int  # items read from the collection


def _entries(doc: Mapping[str, Any]) -> list[Any]:
    for key in ("orderedItems", "items"):
        value = doc.get(key)
        if isinstance(value, list):
            return value
        if isinstance(value, (str, dict)):
            return [value]
    return []


def _same_host(url: str, host: str) -> bool:
    try:
        return host_of(url) == host
    except ValueError:
        return False


class _Reader:
    def __init__(self, ctx: Context, signer: Signer, context: str) -> None:
        self.ctx, self.signer, self.context = ctx, signer, context
        self.host = host_of(context)

    async def get(self, url: str) -> dict[str, Any]:
        try:
            return await self.ctx.http.get_json(url, signer=self.signer)
        except FetchError as e:
            raise BackfillError(f"fetch {url}: {e}") from e

    async def entries(self) -> tuple[str | None, list[Any]]:
        """(owner, up to MAX_ITEMS raw entries) of the context collection."""
        doc = await self.get(self.context)
        if doc.get("type") not in COLLECTION_TYPES:
            raise BackfillError(f"context is a {doc.get('type')!r}, not a collection")
        owner = id_of(doc.get("attributedTo"))
        out = _entries(doc)
        nxt: Any = doc.get("first")
        seen = {self.context}
        pages = 0
        while nxt is not None and len(out) < MAX_ITEMS and pages < MAX_PAGES:
            if isinstance(nxt, dict) and ("orderedItems" in nxt or "items" in nxt):
                page = nxt  # an embedded first page
            else:
                url = id_of(nxt)
                if not url or url in seen or not _same_host(url, self.host):
                    break  # pages live with the collection
                seen.add(url)
                page = await self.get(url)
                pages += 1
            out.extend(_entries(page))
            nxt = page.get("next")
        return owner, out[:MAX_ITEMS]

    def embedded(self, entry: Any) -> tuple[str | None, dict[str, Any] | None]:
        """(object id, usable embedded object or None) of one collection entry."""
        if isinstance(entry, dict) and entry.get("type") in ACTIVITY_TYPES:
            if entry.get("type") != "Create":
                return None, None
            entry = entry.get("object")
        oid = id_of(entry)
        if not oid:
            return None, None
        if isinstance(entry, dict) and _same_host(oid, self.host) and "attributedTo" in entry:
            return oid, entry  # vouched for by its own server, which served the page
        return oid, None

    async def object(self, oid: str, doc: dict[str, Any] | None) -> tuple[
        RemoteObject, dict[str, Any]
    ] | None:
        try:
            raw = doc if doc is not None else await self.get(oid)
            return parse_content(raw), raw
        except (BackfillError, Refused) as e:
            log.info("backfill item skipped", extra={"object": oid, "reason": str(e)})
            return None


async def collect(ctx: Context, context: str) -> Collected:
    """Read `context` and fetch the posts we lack (no database writes)."""
    async with ctx.sessions() as session:
        try:
            signer = await instance_signer(ctx, session)
        except ResolveError as e:
            raise BackfillError(str(e)) from e
    reader = _Reader(ctx, signer, context)
    owner, entries = await reader.entries()
    wanted: dict[str, dict[str, Any] | None] = {}
    for entry in entries:
        oid, doc = reader.embedded(entry)
        if oid and not ctx.uris.is_local(oid) and oid not in wanted:
            wanted[oid] = doc
    if wanted:
        async with ctx.sessions() as session:
            held = set(
                (await session.execute(select(Object.uri).where(Object.uri.in_(list(wanted)))))
                .scalars()
            )
        for oid in held:
            wanted.pop(oid, None)
    objects = []
    for oid, doc in wanted.items():
        got = await reader.object(oid, doc)
        if got is not None and got[0].id == oid:
            objects.append(got)
    # Authors now, each in its own short transaction: storing then needs no network.
    for author in dict.fromkeys(o.attributed_to for o, _ in objects if o.attributed_to):
        async with ctx.sessions() as session, session.begin():
            with contextlib.suppress(ResolveError):
                await get_actor(ctx, session, author)
    return Collected(owner, objects, len(entries))


# ---- storing ----------------------------------------------------------------------------------


def _parents_first(
    objects: list[tuple[RemoteObject, dict[str, Any]]],
) -> list[tuple[RemoteObject, dict[str, Any]]]:
    """Each post after its parent when both are in the batch (cycles kept in order)."""
    pending = {o.id: (o, raw) for o, raw in objects}
    out: list[tuple[RemoteObject, dict[str, Any]]] = []
    while pending:
        ready = [k for k, (o, _) in pending.items() if o.in_reply_to not in pending]
        if not ready:  # a cycle: hostile or broken, store the rest as it comes
            ready = list(pending)
        for k in ready:
            out.append(pending.pop(k))
    return out


async def _thread_waiting(session: AsyncSession, context: str) -> None:
    """Replies of `context` stored before their root (the one that asked for this
    backfill): give them their thread now that their parents are here."""
    q = (
        select(Object)
        .where(Object.context == context, Object.thread_id.is_(None),
               Object.in_reply_to.is_not(None), Object.deleted_at.is_(None))
        .order_by(Object.published, Object.id)
        .limit(MAX_ITEMS * 2)
    )
    for row in list((await session.execute(q)).scalars()):
        parent = await stored_object(session, row.in_reply_to or "")
        if parent is not None and parent.id != row.id:
            row.thread_id = parent.thread_id or parent.id
            await session.flush()


async def store(
    ctx: Context, session: AsyncSession, context: str, group: Actor | None, got: Collected
) -> int:
    """Store the fetched posts (parents first); returns how many were stored."""
    if group is not None and got.owner is not None and got.owner != group.uri:
        group = None  # the collection says it belongs to someone else: file nothing
    stored = 0
    for obj, raw in _parents_first(got.objects):
        try:
            async with session.begin_nested():
                await upsert_object(
                    ctx, session, obj, raw, group=group if obj.context == context else None
                )
            stored += 1
        except Refused as e:
            log.info("backfill item refused", extra={"object": obj.id, "reason": str(e)})
    await _thread_waiting(session, context)
    return stored


# ---- the worker -------------------------------------------------------------------------------


async def _claim(ctx: Context) -> list[tuple[int, str, int | None]]:
    now = utcnow()
    async with ctx.sessions() as session, session.begin():
        inner = (
            select(ContextBackfill.id)
            .where(
                ContextBackfill.due_at <= now,
                or_(ContextBackfill.locked_until.is_(None), ContextBackfill.locked_until < now),
            )
            .order_by(ContextBackfill.due_at, ContextBackfill.id)
            .limit(CLAIM_BATCH)
            .with_for_update(skip_locked=True)
        )
        stmt = (
            update(ContextBackfill)
            .where(ContextBackfill.id.in_(inner.scalar_subquery()),
                   ContextBackfill.due_at <= now)
            .values(locked_until=now + LEASE, fetched_at=now)
            .returning(ContextBackfill.id, ContextBackfill.context, ContextBackfill.group_id)
            .execution_options(synchronize_session=False)
        )
        return [(r[0], r[1], r[2]) for r in (await session.execute(stmt)).all()]


async def backfill_one(ctx: Context, row_id: int, context: str, group_id: int | None) -> int:
    """Fetch and store one claimed context; returns how many posts were stored."""
    stored, error = 0, None
    try:
        async with asyncio.timeout(TIME_BUDGET):
            got = await collect(ctx, context)
        async with ctx.sessions() as session, session.begin():
            session.info[BACKFILLING] = True
            # A write first: SQLite takes its write lock here, before any savepoint's
            # snapshot could go stale (PostgreSQL does not care).
            await session.execute(
                update(ContextBackfill).where(ContextBackfill.id == row_id)
                .values(locked_until=utcnow() + LEASE)
                .execution_options(synchronize_session=False)
            )
            group = await session.get(Actor, group_id) if group_id is not None else None
            stored = await store(ctx, session, context, group, got)
    except (BackfillError, TimeoutError, ValueError) as e:
        error = f"{type(e).__name__}: {e}"[:1000]
    except SQLAlchemyError as e:
        log.exception("backfill failed", extra={"context": context})
        error = f"{type(e).__name__}: {e}"[:1000]
    async with ctx.sessions() as session, session.begin():
        await session.execute(
            update(ContextBackfill)
            .where(ContextBackfill.id == row_id)
            .values(due_at=None, locked_until=None, stored_items=stored, last_error=error)
            .execution_options(synchronize_session=False)
        )
    log.info("backfill", extra={"context": context, "stored": stored, "error": error})
    return stored


async def run_once(ctx: Context) -> int:
    """Backfill the due contexts (one claimed batch); returns how many were processed."""
    claimed = await _claim(ctx)
    for row_id, context, group_id in claimed:
        await backfill_one(ctx, row_id, context, group_id)
    return len(claimed)


async def run(ctx: Context, stop: asyncio.Event) -> None:
    """The worker's backfill task: look for due contexts every `maintenance_interval`."""
    while not stop.is_set():
        try:
            busy = await run_once(ctx)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug or an outage: log it and try again later
            log.exception("backfill pass failed")
            busy = 0
        if busy:
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), ctx.settings.maintenance_interval)
