"""One streaming connection: its subscriptions, and the facts it turns into frames.

The frames go out through a `Transport`: a WebSocket (`WebSocketTransport`, below) or an
HTTP event stream (streaming/sse.py) — routing and rendering are the same for both.

Mastodon's protocol: `{"type": "subscribe", "stream": "hashtag", "tag": "grève"}` and
`unsubscribe` messages in; `{"stream": ["hashtag", "grève"], "event": "update",
"payload": "<Status JSON>"}` frames out (payload a string, as Mastodon); errors as
`{"error": "…", "status": 400}` frames, the connection staying open.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import orjson
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.api.statuses_view import render
from t3r1_fed.context import Context
from t3r1_fed.db.models import Actor
from t3r1_fed.oauth import scopes as sc
from t3r1_fed.streaming import facts as fx
from t3r1_fed.streaming.bus import Subscriber
from t3r1_fed.streaming.notifications import render_one

log = logging.getLogger("t3r1.streaming")

MAX_SUBSCRIPTIONS: Final = 32
MAX_TAG_CHARS: Final = 100
RECENT: Final = 200  # posts recently sent on `user`: a later boost of one is not re-sent
TOKEN_RECHECK: Final = 60.0  # seconds between checks that the token is still valid

STATUS_STREAMS: Final = frozenset({
    "user", "public", "public:local", "public:remote", "hashtag", "hashtag:local", "list",
    "public:media", "public:local:media", "public:remote:media",  # with attachments only
})
STREAMS: Final = STATUS_STREAMS | {"user:notification"}
# Mastodon's scopes per stream (streaming/index.js): any one of them.
SCOPES: Final = {
    "user": ("read:statuses",),
    "user:notification": ("read:notifications",),
    "list": ("read:lists", "read:statuses"),
}


class StreamError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


Sub = tuple[str, str | None]  # (stream, tag or list id)


class Transport(Protocol):
    """Where a connection's frames go (a WebSocket, an HTTP event stream)."""

    @property
    def closed(self) -> bool: ...

    async def frame(self, stream: list[str], event: str, payload: str) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


@dataclass
class WebSocketTransport:
    """Mastodon's WebSocket frames: `{"stream": [...], "event": ..., "payload": "..."}`."""

    ws: web.WebSocketResponse

    @property
    def closed(self) -> bool:
        return self.ws.closed

    async def frame(self, stream: list[str], event: str, payload: str) -> None:
        doc = {"stream": stream, "event": event, "payload": payload}
        await self.ws.send_str(orjson.dumps(doc).decode())

    async def close(self, code: int, reason: str) -> None:
        await self.ws.close(code=code, message=reason.encode())

    async def error(self, err: StreamError) -> None:
        await self.ws.send_str(orjson.dumps({"error": str(err), "status": err.status}).decode())


def allowed(scopes: Sequence[str], stream: str) -> bool:
    return any(sc.allows(tuple(scopes), s) for s in SCOPES.get(stream, ("read:statuses",)))


def parse_subscription(doc: Any) -> Sub:
    """(stream, parameter) of a subscribe/unsubscribe message or of the query string."""
    stream = doc.get("stream") if isinstance(doc, dict) else None
    if not isinstance(stream, str) or stream not in STREAMS:
        raise StreamError(400, "Unknown stream type")
    if stream.startswith("hashtag"):
        tag = doc.get("tag")
        if not isinstance(tag, str) or not tag.strip().lstrip("#"):
            raise StreamError(400, "No tag for stream provided")
        tag = tag.strip().lstrip("#").lower()
        if len(tag) > MAX_TAG_CHARS:
            raise StreamError(400, "Tag too long")
        return stream, tag
    if stream == "list":
        raw = doc.get("list")
        try:
            list_id = int(str(raw))
        except ValueError:
            raise StreamError(400, "No list for stream provided") from None
        if not 0 < list_id < (1 << 63):
            raise StreamError(400, "No list for stream provided")
        return stream, str(list_id)
    return stream, None


@dataclass
class Connection:
    ctx: Context
    out: Transport
    viewer: Actor
    user_id: int
    token_id: int
    scopes: tuple[str, ...]
    # Is the token still valid? (revocation closes the stream)
    token_valid: Callable[[], Any]
    subs: set[Sub] = field(default_factory=set)
    recent: deque[int] = field(default_factory=lambda: deque(maxlen=RECENT))
    checked_at: float = field(default_factory=time.monotonic)

    async def subscribe(self, sub: Sub) -> None:
        stream, param = sub
        if not allowed(self.scopes, stream):
            raise StreamError(401, "Access token does not have the required scopes")
        if sub in self.subs:
            return
        if len(self.subs) >= MAX_SUBSCRIPTIONS:
            raise StreamError(400, f"Too many subscriptions (at most {MAX_SUBSCRIPTIONS})")
        if stream == "list":
            assert param is not None
            async with self.ctx.sessions() as s:
                if await _list_members(s, self.user_id, int(param)) is None:
                    raise StreamError(404, "Not authorized to stream this list")
        self.subs.add(sub)

    def unsubscribe(self, sub: Sub) -> None:
        self.subs.discard(sub)

    async def handle_message(self, raw: str) -> None:
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise StreamError(400, "Invalid JSON") from None
        kind = doc.get("type") if isinstance(doc, dict) else None
        if kind == "subscribe":
            await self.subscribe(parse_subscription(doc))
        elif kind == "unsubscribe":
            self.unsubscribe(parse_subscription(doc))
        # Other message types are ignored, as Mastodon's streaming server does.

    # -- facts → frames -----------------------------------------------------------------

    def wants(self, fact: fx.Fact) -> bool:
        return bool(self._matching(fact))

    def _matching(self, fact: fx.Fact) -> list[Sub]:
        me = self.viewer.id
        out: list[Sub] = []
        for sub in sorted(self.subs, key=lambda s: (s[0], s[1] or "")):
            stream, param = sub
            if fact.event == fx.NOTIFICATION:
                if fact.recipient_id == me and (
                    stream == "user:notification"
                    or (stream == "user" and allowed(self.scopes, "user:notification"))
                ):
                    out.append(sub)
                continue
            home = me in fact.home or any(me in h for _, h in fact.boosts)
            if stream in ("user", "list") and home:
                out.append(sub)
            elif fact.public and (
                stream == "public"
                or (stream == "public:local" and fact.local)
                or (stream == "public:remote" and not fact.local)
                or (stream == "public:media" and fact.media)
                or (stream == "public:local:media" and fact.media and fact.local)
                or (stream == "public:remote:media" and fact.media and not fact.local)
                or (stream == "hashtag" and param in fact.tags)
                or (stream == "hashtag:local" and fact.local and param in fact.tags)
            ):
                out.append(sub)
        return out

    async def _lists_ok(self, s: AsyncSession, subs: list[Sub], fact: fx.Fact) -> list[Sub]:
        out: list[Sub] = []
        for sub in subs:
            if sub[0] != "list":
                out.append(sub)
                continue
            assert sub[1] is not None
            members = await _list_members(s, self.user_id, int(sub[1]))
            if members is not None and fact.via & set(members):
                out.append(sub)
        return out

    async def deliver(self, fact: fx.Fact) -> None:
        subs = self._matching(fact)
        if not subs:
            return
        if fact.event == fx.UPDATE and fact.object_id in self.recent:
            subs = [s for s in subs if s[0] not in ("user", "list")]
            if not subs:
                return
        frames: list[tuple[Sub, str, str]] = []
        async with self.ctx.sessions() as s:
            subs = await self._lists_ok(s, subs, fact)
            if fact.event == fx.DELETE:
                frames = self._deletions(subs, fact)
            elif fact.event == fx.NOTIFICATION:
                doc = await render_one(self.ctx, s, self.viewer, fact.id)
                if doc is not None:
                    payload = orjson.dumps(doc).decode()
                    frames = [(sub, fact.event, payload) for sub in subs]
            else:
                assert fact.ref is not None
                docs = await render(self.ctx, s, self.viewer, [fact.ref])
                if docs:
                    payload = orjson.dumps(docs[0]).decode()
                    frames = [(sub, fact.event, payload) for sub in subs]
        for sub, event, payload in frames:
            await self.send(sub, event, payload)
        home = any(sub[0] in ("user", "list") for sub, _, _ in frames)
        if home and fact.object_id is not None and fact.event == fx.UPDATE:
            self.recent.append(fact.object_id)

    def _deletions(self, subs: list[Sub], fact: fx.Fact) -> list[tuple[Sub, str, str]]:
        me = self.viewer.id
        out: list[tuple[Sub, str, str]] = []
        for sub in subs:
            if sub[0] in ("user", "list"):
                if me in fact.home:
                    out.append((sub, fx.DELETE, str(fact.id)))
                out.extend((sub, fx.DELETE, str(bsid)) for bsid, h in fact.boosts if me in h)
            else:
                out.append((sub, fx.DELETE, str(fact.id)))
        return out

    async def send(self, sub: Sub, event: str, payload: str) -> None:
        stream = [sub[0]] if sub[1] is None else [sub[0], sub[1]]
        await self.out.frame(stream, event, payload)

    async def pump(self, sub: Subscriber) -> None:
        """Turn facts into frames until the connection ends; close a slow consumer."""
        while not self.out.closed:
            get = asyncio.ensure_future(sub.queue.get())
            over = asyncio.ensure_future(sub.overflowed.wait())
            try:
                await asyncio.wait({get, over}, timeout=TOKEN_RECHECK,
                                             return_when=asyncio.FIRST_COMPLETED)
            finally:
                over.cancel()
                if not get.done():
                    get.cancel()
            if sub.overflowed.is_set():
                await self.out.close(1013, "too slow: events dropped")
                return
            if time.monotonic() - self.checked_at >= TOKEN_RECHECK:
                self.checked_at = time.monotonic()
                if not await self.token_valid():
                    await self.out.close(1008, "access token revoked")
                    return
            if get.cancelled():  # nothing came (a fact taken at the last moment is kept)
                continue
            try:
                await self.deliver(get.result())
            except (ConnectionResetError, RuntimeError):  # the socket went away
                return
            except Exception:  # one event that fails to render must not end the stream
                log.exception("stream event not delivered")


async def _list_members(s: AsyncSession, user_id: int, list_id: int) -> list[int] | None:
    from t3r1_fed.api.lists import list_member_ids

    return await list_member_ids(s, user_id, list_id)
