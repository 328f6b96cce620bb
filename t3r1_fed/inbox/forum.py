"""Remote forum content: what a thread or a reply is, and which local thread it joins.

- Ingest hook (Note/Article/Page): a reply whose parent we hold gets the parent's thread
  (`thread_id` of the root); a titled top-level object with a `context` (NodeBB topics,
  Discourse, FEP-7888 forums) is a thread, like a Lemmy `Page`.
- `thread_group`: the local cooperative a reply belongs to when it does not address one
  (Mastodon replies to a group's boost, INTEROP §5): its `context` names one of our
  discussions, or its `inReplyTo` chain reaches a post of a local cooperative. Parents we
  lack are fetched from their origin (for replies sent to one of our actors), at most
  MAX_REPLY_DEPTH steps (INTEROP §7.15), and stored top-down only when the chain does
  reach a local cooperative.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.coops.forum import DISCUSSIONS
from t3r1_fed.coops.kinds import on_ingest
from t3r1_fed.coops.posting import PostRefused, check_can_post, coop_for_actor
from t3r1_fed.db.models import Actor, Object
from t3r1_fed.inbox.objects import (
    MAX_REPLY_DEPTH,
    Refused,
    fetch_remote_object,
    stored_object,
    upsert_object,
)
from t3r1_fed.vocab.normalize import RemoteObject

FORUM_KINDS = frozenset({"post", "thread", "reply"})


@on_ingest("Note", "Article", "Page")
async def _thread_fields(
    ctx: Context, session: AsyncSession, row: Object, raw: Mapping[str, Any]
) -> None:
    if row.kind not in FORUM_KINDS:
        return  # FAQ entries, documents … are someone else's
    if row.in_reply_to:
        row.kind = "reply"
        if row.thread_id is None:
            parent = await stored_object(session, row.in_reply_to)
            if parent is not None and parent.id != row.id:
                row.thread_id = parent.thread_id or parent.id
                if row.context is None:  # Mastodon sends none: take the thread's
                    root = await session.get(Object, row.thread_id)
                    row.context = root.context if root is not None else None
            elif row.context and (root := await _root_of_context(ctx, session, row.context)):
                row.thread_id = root.id  # parent unknown, but it names our discussion
    elif row.type == "Page" or (row.name and row.context and row.context != row.uri):
        row.kind = "thread"


async def _local_group(session: AsyncSession, group_id: int | None) -> Actor | None:
    if group_id is None:
        return None
    q = select(Actor).where(
        Actor.id == group_id, Actor.local.is_(True), Actor.deleted_at.is_(None)
    )
    return (await session.execute(q)).scalar()


async def _root_of_context(ctx: Context, session: AsyncSession, context: str) -> Object | None:
    """The root of one of our discussions, from its context URL."""
    path = ctx.uris.local_path(context)
    parts = path.strip("/").split("/") if path else []
    if len(parts) != 4 or parts[0] != "c" or parts[2] != DISCUSSIONS:
        return None
    root = await stored_object(session, ctx.uris.object(parts[3]))
    if root is None or root.context != context or root.deleted_at is not None:
        return None
    return root


async def thread_group(ctx: Context, session: AsyncSession, obj: RemoteObject) -> Actor | None:
    """The local cooperative whose thread `obj` replies into, if any (see module doc)."""
    if not obj.in_reply_to:
        return None
    if obj.context and (root := await _root_of_context(ctx, session, obj.context)):
        return await _local_group(session, root.group_id)
    # Fetch missing parents only for replies sent to one of our actors (Mastodon mentions
    # the people it replies to): a followed account's replies elsewhere cost no fetch.
    mentioned = (t.href for t in obj.tags if t.type == "Mention" and t.href)
    addressed = [*obj.to, *obj.cc, *obj.audience, *mentioned]
    may_fetch = any(ctx.uris.is_local(a) for a in addressed)
    fetched: list[tuple[RemoteObject, dict[str, Any]]] = []
    seen = {obj.id}
    uri: str | None = obj.in_reply_to
    for _ in range(MAX_REPLY_DEPTH):
        if not uri or uri in seen:
            return None
        seen.add(uri)
        parent = await stored_object(session, uri)
        if parent is None:
            if not may_fetch or ctx.uris.is_local(uri):
                return None
            try:
                remote, raw = await fetch_remote_object(ctx, session, uri)
            except Refused:
                return None
            fetched.append((remote, raw))
            uri = remote.in_reply_to
            continue
        if parent.group_id is not None:
            group = await _local_group(session, parent.group_id)
            if group is not None:
                await _store_chain(ctx, session, group, fetched)
            return group
        uri = parent.in_reply_to
    return None


async def _store_chain(
    ctx: Context,
    session: AsyncSession,
    group: Actor,
    fetched: list[tuple[RemoteObject, dict[str, Any]]],
) -> None:
    """Store the parents fetched on the way, oldest first (each then finds its own parent,
    hence its thread), filed in the cooperative when it would have accepted them."""
    coop = await coop_for_actor(session, group.id)
    for remote, raw in reversed(fetched):
        try:
            row = await upsert_object(ctx, session, remote, raw)
        except Refused:
            return
        author = await session.get(Actor, row.author_id)
        if coop is None or author is None or row.group_id is not None:
            continue
        try:
            await check_can_post(session, group, coop, author, row)
        except PostRefused:
            continue
        row.group_id = group.id
