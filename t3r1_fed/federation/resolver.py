"""Remote actor cache: fetch, validate and store actors and their keys.

Every fetch goes through the safe client and is signed by our instance actor. A key is
refetched at most once per `KEY_REFETCH_WINDOW` per actor, however many bad signatures
arrive (so a flood of forged requests cannot turn us into a fetch amplifier).
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.db.models import Actor, utcnow
from t3r1_fed.federation.hosts import host_of
from t3r1_fed.federation.http_client import FetchError
from t3r1_fed.federation.signing import Signer, make_signer
from t3r1_fed.vocab.normalize import InvalidObject, RemoteActor, parse_actor

log = logging.getLogger(__name__)

ACTOR_TTL = timedelta(days=1)
KEY_REFETCH_WINDOW = timedelta(seconds=60)


class ResolveError(Exception):
    """The remote actor or key could not be fetched or is not acceptable."""


async def instance_signer(ctx: Context, session: AsyncSession) -> Signer:
    row = (
        await session.execute(
            select(Actor.key_id, Actor.private_key_pem).where(Actor.uri == ctx.uris.instance_actor)
        )
    ).first()
    if row is None or row[0] is None or row[1] is None:
        raise ResolveError("instance actor missing: run `t3r1 init`")
    return make_signer(row[0], row[1])


async def fetch_document(ctx: Context, session: AsyncSession, url: str) -> dict[str, Any]:
    signer = await instance_signer(ctx, session)
    try:
        return await ctx.http.get_json(url, signer=signer)
    except FetchError as e:
        raise ResolveError(f"fetch {url}: {e}") from e


def _apply(actor: Actor, remote: RemoteActor, raw: dict[str, Any]) -> None:
    actor.type = remote.type
    actor.username = remote.preferred_username
    actor.domain = host_of(remote.id)
    actor.name = remote.name
    actor.summary = remote.summary_html
    actor.url = remote.url
    actor.icon_url = remote.icon_url
    actor.inbox = remote.inbox
    actor.outbox = remote.outbox
    actor.shared_inbox = remote.shared_inbox
    actor.followers_url = remote.followers
    actor.following_url = remote.following
    actor.featured_url = remote.featured
    actor.key_id = remote.key_id
    actor.public_key_pem = remote.public_key_pem
    actor.manually_approves_followers = remote.manually_approves_followers
    actor.discoverable = remote.discoverable
    actor.raw = json.dumps(raw, ensure_ascii=False)
    actor.fetched_at = utcnow()
    actor.deleted_at = None


async def store_actor(session: AsyncSession, remote: RemoteActor, raw: dict[str, Any]) -> Actor:
    actor = (await session.execute(select(Actor).where(Actor.uri == remote.id))).scalar()
    if actor is not None:
        if actor.local:
            raise ResolveError("refusing to overwrite a local actor")
        _apply(actor, remote, raw)
        return actor
    actor = Actor(uri=remote.id, local=False)
    _apply(actor, remote, raw)
    try:
        async with session.begin_nested():
            session.add(actor)
    except IntegrityError:  # another task stored it first
        existing = (await session.execute(select(Actor).where(Actor.uri == remote.id))).scalar_one()
        _apply(existing, remote, raw)
        return existing
    return actor


async def fetch_actor(ctx: Context, session: AsyncSession, uri: str) -> Actor:
    doc = await fetch_document(ctx, session, uri)
    try:
        remote = parse_actor(doc, derive_username=True)
    except InvalidObject as e:
        raise ResolveError(f"invalid actor {uri}: {e}") from e
    return await store_actor(session, remote, doc)


async def get_actor(
    ctx: Context, session: AsyncSession, uri: str, *, refresh: bool = False
) -> Actor:
    """The actor at `uri`: from the cache when fresh, else fetched (remote) or looked up (local)."""
    actor = (await session.execute(select(Actor).where(Actor.uri == uri))).scalar()
    if actor is not None and (actor.local or actor.deleted_at is not None):
        if actor.deleted_at is not None:
            raise ResolveError(f"actor {uri} was deleted")
        return actor
    if ctx.uris.is_local(uri):
        raise ResolveError(f"no local actor {uri}")
    if (
        actor is not None
        and not refresh
        and actor.fetched_at
        and utcnow() - actor.fetched_at < ACTOR_TTL
    ):
        return actor
    try:
        return await fetch_actor(ctx, session, uri)
    except ResolveError:
        if actor is not None and not refresh:
            return actor  # stale beats nothing when the remote is briefly down
        raise


async def cached_actor(session: AsyncSession, uri: str) -> Actor | None:
    return (await session.execute(select(Actor).where(Actor.uri == uri))).scalar()


async def actor_for_key(
    ctx: Context, session: AsyncSession, key_id: str, *, refresh: bool = False
) -> Actor:
    """The actor owning `key_id`, with key owner binding (the actor must list the key)."""
    if not refresh:
        actor = (await session.execute(select(Actor).where(Actor.key_id == key_id))).scalar()
        if actor is not None:
            return actor
    else:
        actor = (await session.execute(select(Actor).where(Actor.key_id == key_id))).scalar()
        if (
            actor is not None
            and actor.fetched_at
            and utcnow() - actor.fetched_at < KEY_REFETCH_WINDOW
        ):
            raise ResolveError("key refetched recently; not fetching again")
    if ctx.uris.is_local(key_id):
        raise ResolveError("unknown local key")
    url = key_id.split("#", 1)[0]
    doc = await fetch_document(ctx, session, url)
    if "inbox" not in doc and isinstance(doc.get("owner"), str):
        # A key document (GoToSocial's `…/main-key` style): follow its owner.
        owner = doc["owner"]
        if host_of(owner) != host_of(url):
            raise ResolveError("key owner on another host")
        doc = await fetch_document(ctx, session, owner)
    try:
        remote = parse_actor(doc, derive_username=True)
    except InvalidObject as e:
        raise ResolveError(f"invalid actor for key {key_id}: {e}") from e
    if remote.key_id != key_id:
        raise ResolveError("the actor does not list this key")
    return await store_actor(session, remote, doc)
