"""Who is asking, and the small request helpers the account endpoints share.

Mastodon lets public account data be read without a token; a token that is given must
grant the endpoint's scope (`authorize_if_got_token!`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from multidict import MultiDict, MultiMapping
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.db.models import Actor, User
from t3r1_fed.oauth import scopes as sc
from t3r1_fed.oauth.auth import authenticate, json_exc, require_scope

NOT_FOUND = "Record not found"


@dataclass(frozen=True)
class Viewer:
    user: User
    actor: Actor


async def _viewer(session: AsyncSession, user_id: int) -> Viewer:
    row = (await session.execute(
        select(User, Actor).join(Actor, Actor.id == User.actor_id).where(User.id == user_id)
    )).first()
    if row is None or row[1].deleted_at is not None:
        raise json_exc(web.HTTPUnauthorized, "The access token is invalid")
    return Viewer(row[0], row[1])


async def optional_viewer(
    request: web.Request, session: AsyncSession, scope: str
) -> Viewer | None:
    """The token's user if a token is given (403 if it lacks `scope`), else None."""
    info = await authenticate(request)
    if info is None:
        return None
    if not sc.allows(info.scopes, scope):
        raise json_exc(web.HTTPForbidden, "This action is outside the authorized scopes")
    return None if info.user_id is None else await _viewer(session, info.user_id)


async def required_viewer(request: web.Request, session: AsyncSession, scope: str) -> Viewer:
    """The token's user; 401/403/422 as `require_scope`."""
    info = await require_scope(request, scope)
    assert info.user_id is not None  # require_scope(user=True) guarantees it
    return await _viewer(session, info.user_id)


def account_id(request: web.Request, name: str = "id") -> int:
    try:
        value = int(request.match_info[name])
    except (KeyError, ValueError):
        raise json_exc(web.HTTPNotFound, NOT_FOUND) from None
    if not 0 < value < (1 << 63):
        raise json_exc(web.HTTPNotFound, NOT_FOUND)
    return value


async def actor_or_404(session: AsyncSession, actor_id: int) -> Actor:
    actor = (await session.execute(
        select(Actor).where(Actor.id == actor_id, Actor.deleted_at.is_(None))
    )).scalar()
    if actor is None:
        raise json_exc(web.HTTPNotFound, NOT_FOUND)
    return actor


async def params(request: web.Request) -> MultiDict[str]:
    """Query string merged with a form or JSON body (JSON lists become repeated keys)."""
    out: MultiDict[str] = MultiDict(request.query)
    if not request.can_read_body:
        return out
    if request.content_type == "application/json":
        try:
            body: Any = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            raise json_exc(web.HTTPBadRequest, "The request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise json_exc(web.HTTPBadRequest, "The request body must be a JSON object")
        for k, v in body.items():
            for item in v if isinstance(v, list) else [v]:
                if isinstance(item, bool):
                    out.add(k, "true" if item else "false")
                elif item is not None and not isinstance(item, dict | list):
                    out.add(k, str(item))
        return out
    form = await request.post()
    for k, v in form.items():
        if isinstance(v, str):
            out.add(k, v)
    return out


TRUE = frozenset({"true", "1", "on", "yes", "t"})
FALSE = frozenset({"false", "0", "off", "no", "f", ""})


def flag(values: MultiMapping[str], name: str, default: bool | None = None) -> bool | None:
    """A Mastodon boolean parameter (Rails' casting): absent → `default`; bad → 400."""
    raw = values.get(name)
    if raw is None:
        return default
    low = raw.strip().lower()
    if low in TRUE:
        return True
    if low in FALSE:
        return False
    raise json_exc(web.HTTPBadRequest, f"{name} must be a boolean")


def int_param(values: MultiMapping[str], name: str, default: int, lo: int, hi: int) -> int:
    raw = values.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise json_exc(web.HTTPBadRequest, f"{name} must be a number") from None
    return max(lo, min(value, hi))


def id_list(values: MultiMapping[str], name: str = "id") -> list[int]:
    """`id[]=1&id[]=2` (Rails) or `id=1&id=2`; non-numeric ids are ignored."""
    out: list[int] = []
    for raw in [*values.getall(name + "[]", []), *values.getall(name, [])]:
        try:
            value = int(raw)
        except ValueError:
            continue
        if 0 < value < (1 << 63) and value not in out:
            out.append(value)
    return out
