"""Mastodon client API, first increment: OAuth (oauth/handlers.py), verify_credentials,
instance v1 and v2. Registered as one feature module (features.py)."""

from __future__ import annotations

import base64
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.api import entities
from t3r1_fed.api.routing import get
from t3r1_fed.appkeys import CTX
from t3r1_fed.config import Settings
from t3r1_fed.context import Context
from t3r1_fed.db.models import Actor, Object, User
from t3r1_fed.httputil import json_error, json_response
from t3r1_fed.oauth import handlers as oauth
from t3r1_fed.oauth.auth import require_scope

T = TypeVar("T")

# A 1×1 transparent PNG, the avatar and header of accounts without one.
PLACEHOLDER_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


async def verify_credentials(request: web.Request) -> web.Response:
    info = await require_scope(request, "profile")
    ctx = request.app[CTX]
    async with ctx.sessions() as s:
        row = (await s.execute(
            select(User, Actor).join(Actor, Actor.id == User.actor_id)
            .where(User.id == info.user_id)
        )).first()
        if row is None or row[1].deleted_at is not None:
            return json_error(401, "The access token is invalid")
        doc = await entities.credential_account(s, ctx.settings, row[1], row[0])
    return json_response(doc)


async def _contact(s: AsyncSession, settings: Settings) -> dict[str, Any] | None:
    row = (await s.execute(
        select(User, Actor).join(Actor, Actor.id == User.actor_id)
        .where(User.is_admin.is_(True), Actor.deleted_at.is_(None))
        .order_by(User.id).limit(1)
    )).first()
    return None if row is None else await entities.account(s, settings, row[1])


# Instance statistics cost full counts over the largest tables (an instance with a million
# statuses spends 100+ ms on them), and apps fetch the instance on every start: they are
# kept a minute per instance, as Mastodon caches its instance presenter.
STATS_TTL = 60.0
_stats: dict[tuple[str, str], tuple[float, Any]] = {}


async def _cached(ctx: Context, key: str, compute: Callable[[AsyncSession], Awaitable[T]],
                  s: AsyncSession) -> T:
    now = time.monotonic()
    hit = _stats.get((ctx.settings.domain, key))
    if hit is not None and hit[0] > now:
        return cast(T, hit[1])
    value = await compute(s)
    _stats[(ctx.settings.domain, key)] = (now + STATS_TTL, value)
    return value


async def _v1_counts(s: AsyncSession) -> tuple[int, int, int]:
    users = (await s.execute(select(func.count()).select_from(User))).scalar_one()
    statuses = (await s.execute(
        select(func.count()).select_from(Object)
        .where(Object.local.is_(True), Object.deleted_at.is_(None))
    )).scalar_one()
    domains = (await s.execute(
        select(func.count(func.distinct(Actor.domain))).where(Actor.local.is_(False))
    )).scalar_one()
    return users, statuses, domains


async def _active_month(s: AsyncSession) -> int:
    since = datetime.now(UTC) - timedelta(days=30)
    return int((await s.execute(
        select(func.count(func.distinct(Object.author_id)))
        .where(Object.local.is_(True), Object.published >= since)
    )).scalar_one())


async def instance_v1(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    async with ctx.sessions() as s:
        users, statuses, domains = await _cached(ctx, "v1", _v1_counts, s)
        contact = await _contact(s, ctx.settings)
    return json_response(entities.instance_v1(
        ctx.settings, users=users, statuses=statuses, domains=domains, contact=contact
    ))


async def instance_v2(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    async with ctx.sessions() as s:
        active = await _cached(ctx, "active_month", _active_month, s)
        contact = await _contact(s, ctx.settings)
    return json_response(entities.instance_v2(ctx.settings, active_month=active, contact=contact))


async def placeholder(request: web.Request) -> web.Response:
    return web.Response(
        body=PLACEHOLDER_PNG, content_type="image/png",
        headers={"Cache-Control": "public, max-age=604800"},
    )


def routes(router: web.UrlDispatcher) -> None:
    oauth.routes(router)
    get(router, "/api/v1/accounts/verify_credentials", verify_credentials)
    get(router, "/api/v1/instance", instance_v1)
    get(router, "/api/v2/instance", instance_v2)
    router.add_get("/api/placeholder.png", placeholder)
