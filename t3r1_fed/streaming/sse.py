"""Mastodon's streaming API over HTTP (server-sent events): `GET /api/v1/streaming/user`,
`…/user/notification`, `…/public` (`/local`, `/remote`, `?only_media=true`), `…/hashtag`
(`/local`) `?tag=`, `…/list?list=` — what Mastodon.py's `stream_user`, `stream_public`,
`stream_hashtag`, `stream_list` … request. docs/api.md, section Streaming.

One stream per request, chosen by the path, as Mastodon's streaming server does: the same
subscriptions, routing and rendering as the WebSocket (connection.py), frames written as
`event: update\\ndata: <Status JSON>\\n\\n` (a deletion's data is the bare id), a comment
line `:thump` every HEARTBEAT seconds. The token comes in `Authorization: Bearer` or the
`access_token` query parameter; refusals are JSON errors before the stream starts (401
without a valid user token or scope, 400 without a tag, 404 for a list not the member's).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from t3r1_fed.api.routing import get
from t3r1_fed.appkeys import CTX
from t3r1_fed.context import Context
from t3r1_fed.oauth.auth import bearer
from t3r1_fed.streaming.connection import Connection, StreamError, parse_subscription
from t3r1_fed.streaming.handlers import STREAMING, _token_valid, authenticate, refusal

HEARTBEAT: Final = 15.0  # seconds between `:thump` comments (Mastodon); tests shorten it
DISCONNECT_POLL: Final = 1.0  # how often a vanished client is looked for between writes

# Path → stream, as Mastodon's streaming server (channelNameFromPath).
PATHS: Final = {
    "/api/v1/streaming/user": "user",
    "/api/v1/streaming/user/notification": "user:notification",
    "/api/v1/streaming/public": "public",
    "/api/v1/streaming/public/local": "public:local",
    "/api/v1/streaming/public/remote": "public:remote",
    "/api/v1/streaming/hashtag": "hashtag",
    "/api/v1/streaming/hashtag/local": "hashtag:local",
    "/api/v1/streaming/list": "list",
}
MEDIA_ABLE: Final = frozenset({"public", "public:local", "public:remote"})
# Mastodon's isTruthy: anything but these (and the empty string) is true.
FALSE_VALUES: Final = frozenset({"0", "f", "F", "false", "FALSE", "off", "OFF"})


@dataclass
class EventStream:
    """Frames written to an HTTP response as server-sent events."""

    resp: web.StreamResponse
    ended: bool = False

    @property
    def closed(self) -> bool:
        return self.ended

    async def write(self, text: str) -> None:
        # One write per frame: the heartbeat and the pump never interleave within a frame.
        await self.resp.write(text.encode())

    async def frame(self, stream: list[str], event: str, payload: str) -> None:
        # Mastodon sends no `stream` line over HTTP: the path names the stream. Payloads
        # are single-line (JSON from orjson, or an id).
        await self.write(f"event: {event}\ndata: {payload}\n\n")

    async def close(self, code: int, reason: str) -> None:
        """End the stream (HTTP has no close code: the client reconnects or not)."""
        self.ended = True


def stream_name(request: web.Request) -> str:
    stream = PATHS[request.path.rstrip("/")]
    only_media = request.query.get("only_media", "")
    if stream in MEDIA_ABLE and only_media and only_media not in FALSE_VALUES:
        stream += ":media"
    return stream


async def _heartbeat(out: EventStream) -> None:
    while not out.closed:
        await asyncio.sleep(HEARTBEAT)
        await out.write(":thump\n")


async def _disconnected(request: web.Request) -> None:
    """Return once the client has gone (aiohttp does not cancel the handler for it)."""
    while True:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(DISCONNECT_POLL)


async def _stopping(flag: asyncio.Event) -> None:
    await flag.wait()


async def event_stream(request: web.Request) -> web.StreamResponse:
    ctx: Context = request.app[CTX]
    state = request.app[STREAMING]
    raw = bearer(request) or request.query.get("access_token", "").strip() or None
    auth = await authenticate(ctx, raw)
    resp = web.StreamResponse(headers={
        "Content-Type": "text/event-stream",
        "Cache-Control": "private, no-store",
        "X-Accel-Buffering": "no",  # a reverse proxy must not hold the events back
        # Sent before the stream starts: app.py's CORS middleware runs too late for it.
        "Access-Control-Allow-Origin": "*",
    })
    out = EventStream(resp)

    async def token_valid() -> bool:
        return await _token_valid(ctx, auth.token_id)

    conn = Connection(ctx, out, auth.viewer, auth.user_id, auth.token_id, auth.scopes,
                      token_valid)
    try:
        await conn.subscribe(parse_subscription({**request.query, "stream": stream_name(request)}))
    except StreamError as e:
        raise refusal(e) from None
    # Subscribed before the headers go out: once the client sees the stream open, nothing
    # committed afterwards is missed (events wait in the queue until the pump starts).
    sub = state.hub.subscribe(conn.wants)
    tasks: list[asyncio.Task[None]] = []
    try:
        await resp.prepare(request)
        await out.write(":)\n")  # as Mastodon: the client sees the stream open at once
        tasks = [
            asyncio.create_task(conn.pump(sub), name="sse-pump"),
            asyncio.create_task(_heartbeat(out), name="sse-heartbeat"),
            asyncio.create_task(_disconnected(request), name="sse-disconnect"),
            asyncio.create_task(_stopping(state.stopping), name="sse-shutdown"),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        out.ended = True
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        state.hub.unsubscribe(sub)
    with contextlib.suppress(Exception):  # the client may be gone already
        await resp.write_eof()
    return resp


def routes(router: web.UrlDispatcher) -> None:
    for path in PATHS:
        get(router, path, event_stream)
