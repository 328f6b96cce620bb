"""Mastodon's streaming API over WebSocket: `GET /api/v1/streaming` (upgrade) and
`GET /api/v1/streaming/health`. Registered as a feature module (features.py); the hub is
attached to the app by `install(app)` (app.py). docs/api.md, section Streaming.

The token comes as Mastodon accepts it: `Authorization: Bearer …`, the `access_token`
query parameter, or the `Sec-WebSocket-Protocol` header (browsers cannot set headers; the
protocol is echoed back). Every stream needs a user token, as since Mastodon 4.2: `user`
needs `read:statuses` (its notifications also `read:notifications`), `user:notification`
`read:notifications`, `list` `read:lists` or `read:statuses`, the public and hashtag
streams `read:statuses` (`read` grants them all).
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

from aiohttp import WSMsgType, web
from sqlalchemy import select

from t3r1_fed.api.routing import get
from t3r1_fed.appkeys import CTX
from t3r1_fed.context import Context
from t3r1_fed.db.models import Actor, User
from t3r1_fed.db.models_api import OAuthToken
from t3r1_fed.oauth.auth import bearer, digest, json_exc
from t3r1_fed.streaming.bus import Hub
from t3r1_fed.streaming.connection import (
    Connection,
    StreamError,
    WebSocketTransport,
    allowed,
    parse_subscription,
)

HEARTBEAT: Final = 30.0  # WebSocket ping interval (seconds); a peer silent for long is closed
MAX_MESSAGE: Final = 16 * 1024  # subscribe/unsubscribe messages are tiny


class Streaming:
    """The app's streaming state: the hub and the open sockets (closed on shutdown)."""

    def __init__(self, ctx: Context) -> None:
        self.hub = Hub(ctx)
        self.sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
        self.stopping = asyncio.Event()  # set on shutdown: event streams (sse.py) end

    async def shutdown(self, _app: web.Application) -> None:
        self.stopping.set()
        for ws in list(self.sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=1001, message=b"server shutting down")


STREAMING = web.AppKey("streaming", Streaming)


def install(app: web.Application) -> None:
    """Attach the hub to `app`: started with the app, sockets closed on shutdown."""
    state = Streaming(app[CTX])
    app[STREAMING] = state

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await state.hub.start()
        yield
        await state.hub.close()

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(state.shutdown)


def _token(request: web.Request) -> tuple[str | None, str | None]:
    """(token, subprotocol to echo back)."""
    raw = bearer(request) or request.query.get("access_token", "").strip() or None
    if raw is not None:
        return raw, None
    proto = request.headers.get("Sec-WebSocket-Protocol", "").split(",")[0].strip()
    return (proto, proto) if proto else (None, None)


async def _token_valid(ctx: Context, token_id: int) -> bool:
    async with ctx.sessions() as s:
        revoked = (await s.execute(
            select(OAuthToken.revoked_at).where(OAuthToken.id == token_id)
        )).first()
    return revoked is not None and revoked[0] is None


def _unauthorized(message: str) -> web.HTTPException:
    return json_exc(web.HTTPUnauthorized, message)


async def health(request: web.Request) -> web.Response:
    state = request.app[STREAMING]
    if not state.hub.healthy:
        return web.Response(status=503, text="Service Unavailable", content_type="text/plain")
    return web.Response(text="OK", content_type="text/plain")


@dataclass(frozen=True)
class Authed:
    """The member behind a streaming token."""

    token_id: int
    user_id: int
    scopes: tuple[str, ...]
    viewer: Actor


async def authenticate(ctx: Context, raw: str | None) -> Authed:
    """The member of a user token fit for some stream, or 401 as Mastodon."""
    if raw is None:
        raise _unauthorized("Missing access token")
    async with ctx.sessions() as s:
        tok = (await s.execute(
            select(OAuthToken).where(OAuthToken.token_hash == digest(raw))
        )).scalar()
        if tok is None or tok.revoked_at is not None:
            raise _unauthorized("Invalid access token")
        if tok.user_id is None:
            raise _unauthorized("This method requires an authenticated user")
        scopes = tuple(tok.scopes.split())
        if not (allowed(scopes, "user") or allowed(scopes, "user:notification")):
            raise _unauthorized("Access token does not have the required scopes")
        viewer = (await s.execute(
            select(Actor).join(User, User.actor_id == Actor.id).where(User.id == tok.user_id)
        )).scalar()
        if viewer is None or viewer.deleted_at is not None:
            raise _unauthorized("Invalid access token")
        return Authed(tok.id, tok.user_id, scopes, viewer)


def refusal(err: StreamError) -> web.HTTPException:
    """An initial subscription refused, before the stream starts: 401, 404 or 400."""
    status = {401: web.HTTPUnauthorized, 404: web.HTTPNotFound}.get(err.status,
                                                                     web.HTTPBadRequest)
    return json_exc(status, str(err))


async def stream(request: web.Request) -> web.StreamResponse:
    ctx: Context = request.app[CTX]
    state = request.app[STREAMING]
    if request.headers.get("Upgrade", "").lower() != "websocket":
        # Mastodon answers 404 here when streaming is on the same host (client discovery).
        raise json_exc(web.HTTPNotFound, "Streaming is served over WebSocket at this URL")
    raw, proto = _token(request)
    auth = await authenticate(ctx, raw)
    token_id, user_id, scopes, viewer = auth.token_id, auth.user_id, auth.scopes, auth.viewer

    async def token_valid() -> bool:
        return await _token_valid(ctx, token_id)

    ws = web.WebSocketResponse(heartbeat=HEARTBEAT, max_msg_size=MAX_MESSAGE,
                               protocols=(proto,) if proto else ())
    out = WebSocketTransport(ws)
    conn = Connection(ctx, out, viewer, user_id, token_id, scopes, token_valid)
    initial = None
    if "stream" in request.query:
        try:
            initial = parse_subscription(dict(request.query))
            await conn.subscribe(initial)
        except StreamError as e:
            raise refusal(e) from None
    await ws.prepare(request)
    sub = state.hub.subscribe(conn.wants)
    state.sockets.add(ws)
    pump = asyncio.create_task(conn.pump(sub), name="stream-pump")
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                try:
                    await conn.handle_message(msg.data)
                except StreamError as e:
                    await out.error(e)
            elif msg.type == WSMsgType.BINARY:
                await out.error(StreamError(400, "Binary messages are not supported"))
            if pump.done():
                break
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pump
        state.hub.unsubscribe(sub)
        state.sockets.discard(ws)
        await ws.close()
    return ws


def routes(router: web.UrlDispatcher) -> None:
    get(router, "/api/v1/streaming/health", health)
    get(router, "/api/v1/streaming", stream)
