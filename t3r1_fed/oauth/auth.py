"""Bearer tokens: hashing, lookup, and `require_scope` for API handlers."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import orjson
from aiohttp import web
from sqlalchemy import select

from t3r1_fed.appkeys import CTX
from t3r1_fed.db.models_api import OAuthToken
from t3r1_fed.oauth import scopes as sc


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    token_id: int
    app_id: int
    user_id: int | None
    scopes: tuple[str, ...]


def json_exc(cls: type[web.HTTPException], error: str, **headers: str) -> web.HTTPException:
    return cls(
        text=orjson.dumps({"error": error}).decode(), content_type="application/json",
        headers=headers,
    )


def bearer(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    kind, _, value = auth.partition(" ")
    if kind.lower() == "bearer" and value.strip():
        return value.strip()
    return None


async def authenticate(request: web.Request) -> TokenInfo | None:
    """The request's valid token, or None when it carries none; 401 when it is invalid."""
    raw = bearer(request)
    if raw is None:
        return None
    ctx = request.app[CTX]
    async with ctx.sessions() as s:
        tok = (
            await s.execute(select(OAuthToken).where(OAuthToken.token_hash == digest(raw)))
        ).scalar()
    if tok is None or tok.revoked_at is not None:
        raise json_exc(
            web.HTTPUnauthorized, "The access token is invalid",
            **{"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return TokenInfo(tok.id, tok.app_id, tok.user_id, tuple(tok.scopes.split()))


async def require_scope(
    request: web.Request, scope: str, *, user: bool = True
) -> TokenInfo:
    """The token of the request if it grants `scope` (401 without a valid token, 403 when
    the scope is missing, 422 when a user token is needed and this one has no user)."""
    info = await authenticate(request)
    if info is None:
        raise json_exc(web.HTTPUnauthorized, "The access token is invalid")
    if not sc.allows(info.scopes, scope):
        raise json_exc(
            web.HTTPForbidden, "This action is outside the authorized scopes"
        )
    if user and info.user_id is None:
        raise json_exc(web.HTTPUnprocessableEntity, "This method requires an authenticated user")
    return info
