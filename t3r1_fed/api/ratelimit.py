"""Rate limits of the client API (/api/, /oauth/), as Mastodon's rack-attack rules.

- with a valid access token: `api_rate_limit` requests per `api_rate_period` per token, and
  5× that per user over all their tokens (Mastodon: 300 and 1500 per 5 minutes);
- without one (or with an invalid one): `api_rate_limit` per client IP;
- uploads (POST /api/v1/media, /api/v2/media): `api_media_rate_limit` per user per
  `api_media_rate_period` (Mastodon: 30 per 30 minutes);
- status deletions and unreblogs: `api_delete_rate_limit` per user per
  `api_delete_rate_period` (Mastodon: 30 per 30 minutes).

Windows are fixed and aligned on multiples of their period since the epoch, as rack-attack's.
Every API response carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and
`X-RateLimit-Reset` (ISO 8601, microseconds) of the most constrained rule that applied; past
a limit the answer is 429 `{"error": "Too many requests"}` with `Retry-After` (seconds).

Counters live in the process: several web processes each count separately, so the
effective limit is the configured one times the number of processes (documented in
docs/api.md). The client IP is the peer's, or with a peer in `trusted_proxies`, the
right-most X-Forwarded-For address that is not itself a trusted proxy.
"""

from __future__ import annotations

import ipaddress
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Middleware
from sqlalchemy import select

from t3r1_fed.appkeys import CTX
from t3r1_fed.config import IPNetwork, Settings
from t3r1_fed.db.models_api import OAuthToken
from t3r1_fed.httputil import json_error
from t3r1_fed.oauth.auth import bearer, digest

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PREFIXES: Final = ("/api/", "/oauth/")
EXEMPT: Final = frozenset({"/api/placeholder.png"})  # an image, not an API call
USER_FACTOR: Final = 5
TOKEN_CACHE_SECONDS: Final = 60.0
MAX_CACHED_TOKENS: Final = 10_000
SWEEP_EVERY: Final = 1024
EXPOSED: Final = "Link, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After"
_MEDIA: Final = re.compile(r"/api/v[12]/media/?")
_DELETE: Final = re.compile(r"/api/v1/statuses/[^/]+/?")
_UNREBLOG: Final = re.compile(r"/api/v1/statuses/[^/]+/unreblog/?")


@dataclass(frozen=True)
class Rule:
    name: str
    limit: int
    period: float


@dataclass(frozen=True)
class Verdict:
    """One rule's state after counting this request."""

    limit: int
    remaining: int
    reset: float  # epoch seconds at which the window ends

    @property
    def exceeded(self) -> bool:
        return self.remaining < 0


class Counters:
    """Fixed-window counters per (rule, key), swept of past windows now and then."""

    def __init__(self, periods: dict[str, float]) -> None:
        self._periods = periods  # rule name → period, for sweeping
        self._counts: dict[tuple[str, str], tuple[int, int]] = {}
        self._hits = 0

    def hit(self, rule: Rule, key: str, now: float) -> Verdict:
        window = int(now // rule.period)
        slot = (rule.name, key)
        seen = self._counts.get(slot)
        count = seen[1] + 1 if seen is not None and seen[0] == window else 1
        self._counts[slot] = (window, count)
        self._hits += 1
        if self._hits % SWEEP_EVERY == 0:
            self._sweep(now)
        return Verdict(rule.limit, rule.limit - count, (window + 1) * rule.period)

    def _sweep(self, now: float) -> None:
        # A slot whose window is over is as good as absent; periods differ per rule, so
        # keep only those counted in the current window of their own rule.
        self._counts = {
            slot: (window, count) for slot, (window, count) in self._counts.items()
            if window >= int(now // self._periods[slot[0]])
        }

    def __len__(self) -> int:
        return len(self._counts)


@dataclass(frozen=True)
class Identity:
    token_id: int | None
    user_id: int | None


class TokenCache:
    """Bearer digest → (token id, user id) of a valid token, for a minute: which bucket a
    request counts in, without a query per request. Authentication itself is the
    handler's (oauth/auth.py), so a token revoked meanwhile is still refused there."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Identity | None]] = {}

    async def identify(self, request: web.Request, now: float) -> Identity | None:
        raw = bearer(request)
        if raw is None:
            return None
        key = digest(raw)
        cached = self._entries.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        ctx = request.app[CTX]
        async with ctx.sessions() as s:
            row = (await s.execute(
                select(OAuthToken.id, OAuthToken.user_id)
                .where(OAuthToken.token_hash == key, OAuthToken.revoked_at.is_(None))
            )).first()
        found = None if row is None else Identity(row[0], row[1])
        if len(self._entries) >= MAX_CACHED_TOKENS:
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            if len(self._entries) >= MAX_CACHED_TOKENS:
                self._entries.clear()
        self._entries[key] = (now + TOKEN_CACHE_SECONDS, found)
        return found


def client_ip(request: web.Request, trusted: tuple[IPNetwork, ...]) -> str:
    """The peer address, or behind trusted proxies the client they name."""
    peer = request.remote or ""

    def is_trusted(addr: str) -> bool:
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return False
        return any(ip in net for net in trusted)

    if not trusted or not is_trusted(peer):
        return peer
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",")]
    for hop in reversed([h for h in hops if h]):
        if not is_trusted(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # a garbled header: count the proxy itself
    return peer


def reset_iso(reset: float) -> str:
    """Mastodon's X-RateLimit-Reset: `Time#iso8601(6)` in UTC."""
    return datetime.fromtimestamp(reset, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        s = settings
        self.token = Rule("token", s.api_rate_limit, s.api_rate_period)
        self.user = Rule("user", s.api_rate_limit * USER_FACTOR, s.api_rate_period)
        self.ip = Rule("ip", s.api_rate_limit, s.api_rate_period)
        self.media = Rule("media", s.api_media_rate_limit, s.api_media_rate_period)
        self.delete = Rule("delete", s.api_delete_rate_limit, s.api_delete_rate_period)
        self.trusted = s.trusted_proxies
        self.counters = Counters({
            r.name: r.period for r in (self.token, self.user, self.ip, self.media, self.delete)
        })
        self.tokens = TokenCache()

    async def check(self, request: web.Request, now: float) -> list[Verdict]:
        who = await self.tokens.identify(request, now)
        applied: list[tuple[Rule, str]] = []
        if who is None:
            applied.append((self.ip, client_ip(request, self.trusted)))
        else:
            applied.append((self.token, str(who.token_id)))
            if who.user_id is not None:
                user = str(who.user_id)
                applied.append((self.user, user))
                path, method = request.path, request.method
                if method == "POST" and _MEDIA.fullmatch(path):
                    applied.append((self.media, user))
                elif (method == "DELETE" and _DELETE.fullmatch(path)) or (
                    method == "POST" and _UNREBLOG.fullmatch(path)
                ):
                    applied.append((self.delete, user))
        return [self.counters.hit(rule, key, now) for rule, key in applied if rule.limit > 0]


def _headers(verdicts: list[Verdict]) -> dict[str, str]:
    if not verdicts:
        return {}
    worst = min(verdicts, key=lambda v: (v.remaining, -v.reset))
    return {
        "X-RateLimit-Limit": str(worst.limit),
        "X-RateLimit-Remaining": str(max(worst.remaining, 0)),
        "X-RateLimit-Reset": reset_iso(worst.reset),
        "Access-Control-Expose-Headers": EXPOSED,
    }


def middleware(settings: Settings) -> Middleware:
    """The aiohttp middleware, with its own counters (one per application)."""
    limiter = RateLimiter(settings)

    @web.middleware
    async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if not path.startswith(PREFIXES) or path in EXEMPT or request.method == "OPTIONS":
            return await handler(request)
        now = time.time()
        verdicts = await limiter.check(request, now)
        headers = _headers(verdicts)
        exceeded = [v for v in verdicts if v.exceeded]
        if exceeded:
            # Wait for the last of the exceeded windows to end.
            until = max(v.reset for v in exceeded)
            headers = _headers([max(exceeded, key=lambda v: v.reset)])
            headers["Retry-After"] = str(max(1, math.ceil(until - now)))
            return json_error(429, "Too many requests", **headers)
        try:
            resp = await handler(request)
        except web.HTTPException as e:
            if e.status >= 400 and e.content_type != "application/json":
                # errors_and_cors would rebuild it as JSON without our headers: do it here.
                return json_error(e.status, e.reason, **headers)
            e.headers.update(headers)
            raise
        if not resp.prepared:
            resp.headers.update(headers)
        return resp

    return rate_limit
