"""Who moderates a cooperative, local or remote.

Local cooperatives: their `coop_roles` rows (admins moderate too). Remote groups: the
actors listed in the group's `moderators` collection (Lemmy's `attributedTo`), fetched
signed by our instance actor from the group's own host and kept for `MODERATORS_TTL`
seconds in the Context, so a burst of relayed moderation costs one fetch.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.db.models import Actor, CoopRole
from t3r1_fed.federation.hosts import host_of
from t3r1_fed.federation.resolver import ResolveError, fetch_document
from t3r1_fed.vocab.normalize import InvalidObject, as_list, id_of, parse_actor

MODERATORS_TTL = 60.0
MAX_MODERATORS = 500
REFETCH_AFTER = 5.0


class ModeratorsUnavailable(RuntimeError):
    """The group's moderators collection could not be fetched: try again later (the inbox
    worker retries the activity; it is never silently dropped)."""


async def local_moderators(session: AsyncSession, group_id: int) -> list[Actor]:
    q = (
        select(Actor)
        .join(CoopRole, CoopRole.actor_id == Actor.id)
        .where(CoopRole.coop_actor_id == group_id, CoopRole.role.in_(("admin", "moderator")))
        .order_by(CoopRole.created_at)
    )
    return list((await session.execute(q)).scalars())


def moderators_url(group: Actor) -> str | None:
    """The moderators collection a remote group publishes, on the group's own host."""
    try:
        remote = parse_actor(orjson.loads(group.raw or "{}"), derive_username=True)
    except (InvalidObject, orjson.JSONDecodeError):
        return None
    url = remote.moderators
    try:
        return url if url and host_of(url) == host_of(group.uri) else None
    except ValueError:
        return None


def _items(doc: dict[str, Any]) -> list[str] | None:
    raw = doc.get("orderedItems", doc.get("items"))
    if raw is None:
        return None
    return [i for i in (id_of(x) for x in as_list(raw)[:MAX_MODERATORS]) if i]


async def _fetch(ctx: Context, session: AsyncSession, group: Actor) -> frozenset[str]:
    url = moderators_url(group)
    if url is None:
        return frozenset()
    try:
        doc = await fetch_document(ctx, session, url)
        items = _items(doc)
        first = doc.get("first")
        if items is None and isinstance(first, dict):
            items = _items(first)
        elif items is None and isinstance(first, str) and host_of(first) == host_of(url):
            items = _items(await fetch_document(ctx, session, first))
    except (ResolveError, ValueError) as e:
        raise ModeratorsUnavailable(f"moderators of {group.uri}: {e}") from e
    return frozenset(items or ())


async def group_moderators(
    ctx: Context, session: AsyncSession, group: Actor, *, fresh: bool = False
) -> frozenset[str]:
    """URIs of the moderators (and admins) of `group`."""
    if group.local:
        return frozenset(a.uri for a in await local_moderators(session, group.id))
    now = time.monotonic()
    hit = ctx.moderators_cache.get(group.uri)
    if hit is not None and hit[0] > now and not fresh:
        return hit[1]
    try:
        mods = await _fetch(ctx, session, group)
    except ModeratorsUnavailable:
        if hit is None:
            raise
        mods = hit[1]  # stale beats nothing while the group's host is briefly down
    ctx.moderators_cache[group.uri] = (now + MODERATORS_TTL, mods)
    return mods


async def is_group_moderator(
    ctx: Context, session: AsyncSession, group: Actor, actor_uri: str
) -> bool:
    """Is `actor_uri` the group itself or one of its moderators? A miss on a cached list
    is checked once more against a fresh fetch (a moderator added a moment ago)."""
    if actor_uri == group.uri:
        return True
    if actor_uri in await group_moderators(ctx, session, group):
        return True
    hit = ctx.moderators_cache.get(group.uri)
    if group.local or (hit and hit[0] - MODERATORS_TTL > time.monotonic() - REFETCH_AFTER):
        return False  # just fetched: a refetch would only let misses amplify fetches
    return actor_uri in await group_moderators(ctx, session, group, fresh=True)


def forget_moderators(ctx: Context, group_uri: str) -> None:
    ctx.moderators_cache.pop(group_uri, None)
