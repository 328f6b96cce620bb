"""The one HTTP client for every remote call (INTEROP §4 and §7).

``SafeHttpClient`` wraps a single ``aiohttp.ClientSession`` and enforces, for every
request and every redirect hop:

* an SSRF guard in three layers: IP literals in URLs are checked before any
  connection; host names go through ``GuardedResolver``, which drops refused
  addresses from DNS answers (the connector connects only to what it returns, so
  DNS rebinding cannot slip in between check and use); and a socket factory
  re-checks the address of every socket as a last resort;
* https only, unless ``allow_http`` is set (local development and tests);
* timeouts on connect, on each read and on the whole exchange;
* a body size cap (Content-Length first, then counted while streaming);
* global and per-host caps on requests in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import ipaddress
import re
import socket
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Self

import aiohttp
import orjson
from aiohappyeyeballs import AddrInfoType
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from t3r1_fed.federation.hosts import IPAddress, IPNetwork, host_of, is_blocked_address, same_origin

#: (method, url, body) -> headers to add, e.g. HTTP-signature headers. Called for
#: every request and every redirect hop; its headers win over the client's own, so
#: a signer that signs ``accept`` may return the Accept value it signed.
Signer = Callable[[str, str, bytes | None], Mapping[str, str]]

AS2_ACCEPT = (
    "application/activity+json, "
    'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
)
JRD_ACCEPT = "application/jrd+json, application/json;q=0.9"
_AS2_TYPES = frozenset({"application/activity+json", "application/ld+json"})
_JRD_TYPES = frozenset({"application/jrd+json", "application/json"})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_BODY_HEAD_SIZE = 2048
_CHUNK_SIZE = 65536
_GUARD_MARKER = "refused by SSRF guard"
_DIGITS_RE = re.compile(r"[0-9]+\Z")


class FetchError(Exception):
    """A remote call failed: transport error, timeout, refused target or bad content."""


class BlockedAddressError(FetchError):
    """The target is refused by policy (private address, or plain http when not allowed)."""


class ResponseTooLarge(FetchError):
    """The response body exceeds ``max_body``."""


class BadContentType(FetchError):
    """The response has a content type the caller does not accept."""


class IdMismatch(FetchError):
    """The fetched document's ``id`` does not match the URL it was fetched from."""


class TooManyRedirects(FetchError):
    """More than ``max_redirects`` redirects."""


class HttpStatusError(FetchError):
    """An unexpected HTTP status; ``retry_after`` is in seconds when the server sent one."""

    def __init__(self, status: int, retry_after: float | None = None, url: str = "") -> None:
        super().__init__(f"HTTP {status} from {url}" if url else f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after
        self.url = url


@dataclass(frozen=True, slots=True)
class PostResult:
    """Outcome of a POST: status, parsed Retry-After, first 2 KiB of the body (for logs)."""

    status: int
    retry_after: float | None
    body_head: bytes


class GuardedResolver(AbstractResolver):
    """Resolver that drops refused addresses from the answers of an inner resolver.

    Raise ``BlockedAddressError`` when nothing is left. Owns (and closes) ``inner``.
    """

    def __init__(
        self, allow_private: Sequence[IPNetwork] = (), inner: AbstractResolver | None = None
    ) -> None:
        self._allow = tuple(allow_private)
        self._inner: AbstractResolver = inner if inner is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        kept = [a for a in answers if not is_blocked_address(a["host"], self._allow)]
        if not kept:
            raise BlockedAddressError(f"{host} resolves only to refused addresses")
        return kept

    async def close(self) -> None:
        await self._inner.close()


class _GuardRefused(PermissionError):
    """Raised by the socket factory; aiohttp wraps it, ``_is_guard_refusal`` finds it."""


def _guarded_socket_factory(
    allow_private: Sequence[IPNetwork],
) -> Callable[[AddrInfoType], socket.socket]:
    """Return a socket factory that refuses to create sockets to refused addresses."""
    allow = tuple(allow_private)

    def factory(addr_info: AddrInfoType) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        if is_blocked_address(str(sockaddr[0]), allow):
            raise _GuardRefused(errno.EACCES, f"{_GUARD_MARKER}: {sockaddr[0]}")
        return socket.socket(family=family, type=type_, proto=proto)

    return factory


def _is_guard_refusal(exc: BaseException | None) -> bool:
    while exc is not None:  # aiohttp wraps the socket factory's error in its own
        if isinstance(exc, _GuardRefused) or _GUARD_MARKER in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Parse a Retry-After value (delay in seconds or HTTP-date) into seconds from now."""
    if value is None:
        return None
    text = value.strip()
    if _DIGITS_RE.match(text):
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delay = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, delay)


@functools.lru_cache(maxsize=4096)
def _parse_target(url: str | URL) -> tuple[URL, str, IPAddress | None]:
    """(URL without fragment, normalised authority, IP literal or None) of a request target.

    Pure, so memoised (a fan-out POSTs to the same inboxes again and again; errors are
    raised again, never cached). The policy checks on the result run on every request.
    """
    # Fragments are never sent: drop them so that the URL passed to signers and
    # compared with a document's id is the one actually requested.
    target = (URL(url) if isinstance(url, str) else url).with_fragment(None)
    authority = host_of(str(url))
    try:  # IP literals never reach the resolver: the caller checks them
        literal: IPAddress | None = ipaddress.ip_address(target.raw_host or "")
    except ValueError:
        literal = None
    return target, authority, literal


@dataclass(slots=True)
class _HostSlot:
    semaphore: asyncio.Semaphore
    users: int = 0


class SafeHttpClient:
    """Shared client for all outbound federation traffic. Use ``async with`` or start/close.

    ``resolver`` (optional) is the inner resolver whose answers are filtered; the
    client owns it. ``trace_configs`` are passed to the session (metrics, tests).
    """

    def __init__(
        self,
        *,
        allow_private: Sequence[IPNetwork] = (),
        allow_http: bool = False,
        user_agent: str = "t3r1-fed",
        max_body: int = 1_048_576,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        total_timeout: float = 15.0,
        max_redirects: int = 3,
        total_connections: int = 100,
        per_host_connections: int = 8,
        max_in_flight: int = 64,
        max_in_flight_per_host: int = 8,
        resolver: AbstractResolver | None = None,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
    ) -> None:
        if max_body <= 0 or max_redirects < 0 or max_in_flight <= 0 or max_in_flight_per_host <= 0:
            raise ValueError("limits must be positive")
        self._allow = tuple(allow_private)
        self._allow_http = allow_http
        self._user_agent = user_agent
        self._max_body = max_body
        self._timeout = aiohttp.ClientTimeout(
            total=total_timeout, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._total_timeout = total_timeout
        self._max_redirects = max_redirects
        self._total_connections = total_connections
        self._per_host_connections = per_host_connections
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._per_host_limit = max_in_flight_per_host
        self._host_slots: dict[str, _HostSlot] = {}
        self._inner_resolver = resolver
        self._trace_configs = list(trace_configs)
        self._session: aiohttp.ClientSession | None = None
        self._resolver: GuardedResolver | None = None

    # lifecycle

    async def start(self) -> None:
        """Create the shared session (idempotent). Must run inside the event loop."""
        if self._session is not None:
            return
        self._resolver = GuardedResolver(self._allow, self._inner_resolver)
        connector = aiohttp.TCPConnector(
            limit=self._total_connections,
            limit_per_host=self._per_host_connections,
            keepalive_timeout=30.0,
            resolver=self._resolver,
            socket_factory=_guarded_socket_factory(self._allow),
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            headers={"User-Agent": self._user_agent},
            cookie_jar=aiohttp.DummyCookieJar(),  # never carry cookies between servers
            trust_env=False,  # an environment proxy would bypass the SSRF guard
            trace_configs=self._trace_configs or None,
        )

    async def close(self) -> None:
        """Close the session, its connections and the resolver."""
        session, self._session = self._session, None
        resolver, self._resolver = self._resolver, None
        if session is not None:
            await session.close()
        if resolver is not None:
            await resolver.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # public API

    async def get_json(
        self, url: str, *, signer: Signer | None = None, accept: str = AS2_ACCEPT
    ) -> dict[str, Any]:
        """GET an ActivityStreams document and check that it lives at its ``id``.

        Accepted when ``id`` equals the requested URL or the final URL after
        redirects. Otherwise, if ``id`` is on the final URL's host, it is fetched
        once more and that document's ``id`` must equal it; else ``IdMismatch``.
        """
        final_url, doc = await self._get_document(url, accept, signer, _AS2_TYPES)
        doc_id = doc.get("id")
        if doc_id in (url, final_url):
            return doc
        if not isinstance(doc_id, str) or not same_origin(doc_id, final_url):
            raise IdMismatch(f"document at {final_url} has id {doc_id!r}")
        _, second = await self._get_document(doc_id, accept, signer, _AS2_TYPES)
        if second.get("id") != doc_id:
            raise IdMismatch(f"document at {doc_id} has id {second.get('id')!r}")
        return second

    async def get_jrd(self, url: str, *, signer: Signer | None = None) -> dict[str, Any]:
        """GET a WebFinger (JRD) document; no ``id`` check."""
        _, doc = await self._get_document(url, JRD_ACCEPT, signer, _JRD_TYPES)
        return doc

    async def post(self, url: str, body: bytes, *, headers: Mapping[str, str]) -> PostResult:
        """POST ``body``; redirects are not followed, HTTP error statuses are returned."""
        session = self._require_session()
        target, authority = self._check_target(url)
        async with self._slot(authority), self._guard(str(target)):
            async with session.post(
                target, data=body, headers=dict(headers), allow_redirects=False
            ) as resp:
                head = await self._read_head(resp)
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                return PostResult(status=resp.status, retry_after=retry_after, body_head=head)

    # internals

    def _require_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("SafeHttpClient is not started")
        return self._session

    def _check_target(self, url: str | URL) -> tuple[URL, str]:
        """Validate one request target; return it with its normalised authority."""
        text = str(url)
        try:
            target, authority, literal = _parse_target(url)
        except ValueError as exc:
            raise FetchError(f"invalid URL {text!r}: {exc}") from exc
        if target.scheme == "http" and not self._allow_http:
            raise BlockedAddressError(f"plain http is not allowed: {text}")
        if literal is not None and is_blocked_address(literal, self._allow):
            raise BlockedAddressError(f"refused address: {text}")
        return target, authority

    @contextlib.asynccontextmanager
    async def _slot(self, authority: str) -> AsyncIterator[None]:
        """Hold a per-host slot, then a global one (so waiters do not hog global slots)."""
        slot = self._host_slots.get(authority)
        if slot is None:
            slot = self._host_slots[authority] = _HostSlot(asyncio.Semaphore(self._per_host_limit))
        slot.users += 1
        try:
            async with slot.semaphore, self._in_flight:
                yield
        finally:
            slot.users -= 1
            if slot.users == 0:
                del self._host_slots[authority]

    @contextlib.asynccontextmanager
    async def _guard(self, url: str) -> AsyncIterator[None]:
        """Bound one exchange in time and map transport errors to ``FetchError``."""
        try:
            async with asyncio.timeout(self._total_timeout):
                yield
        except FetchError:
            raise
        except TimeoutError as exc:
            raise FetchError(f"timeout talking to {url}") from exc
        except (aiohttp.ClientError, OSError) as exc:
            if _is_guard_refusal(exc):
                raise BlockedAddressError(f"refused address for {url}") from exc
            raise FetchError(f"{type(exc).__name__} talking to {url}: {exc}") from exc

    async def _get(
        self, url: str, accept: str, signer: Signer | None, types: frozenset[str]
    ) -> tuple[str, bytes]:
        """GET with manual redirects; return the final URL and the body."""
        session = self._require_session()
        current: str | URL = url
        for _hop in range(self._max_redirects + 1):
            target, authority = self._check_target(current)
            headers = {"Accept": accept}
            if signer is not None:
                headers.update(signer("GET", str(target), None))
            async with self._slot(authority), self._guard(str(target)):
                async with session.get(target, headers=headers, allow_redirects=False) as resp:
                    if resp.status in _REDIRECT_STATUSES:
                        current = self._redirect_target(target, resp)
                        continue
                    if resp.status != 200:
                        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                        raise HttpStatusError(resp.status, retry_after, str(target))
                    if resp.content_type not in types:
                        raise BadContentType(f"{resp.content_type!r} from {target}")
                    return str(target), await self._read_body(resp, str(target))
        raise TooManyRedirects(f"more than {self._max_redirects} redirects from {url}")

    async def _get_document(
        self, url: str, accept: str, signer: Signer | None, types: frozenset[str]
    ) -> tuple[str, dict[str, Any]]:
        final_url, body = await self._get(url, accept, signer, types)
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise FetchError(f"invalid JSON from {final_url}") from exc
        if not isinstance(doc, dict):
            raise FetchError(f"JSON from {final_url} is not an object")
        return final_url, doc

    @staticmethod
    def _redirect_target(base: URL, resp: aiohttp.ClientResponse) -> URL:
        location = resp.headers.get("Location")
        if not location:
            raise HttpStatusError(resp.status, None, str(base))
        try:
            return base.join(URL(location))
        except ValueError as exc:
            raise FetchError(f"invalid redirect location {location!r} from {base}") from exc

    async def _read_body(self, resp: aiohttp.ClientResponse, url: str) -> bytes:
        length = resp.content_length
        if length is not None and length > self._max_body:
            raise ResponseTooLarge(f"{url}: Content-Length {length} > {self._max_body}")
        body = bytearray()
        async for chunk in resp.content.iter_chunked(_CHUNK_SIZE):
            body += chunk
            if len(body) > self._max_body:
                raise ResponseTooLarge(f"{url}: body larger than {self._max_body}")
        return bytes(body)

    @staticmethod
    async def _read_head(resp: aiohttp.ClientResponse) -> bytes:
        head = bytearray()
        while len(head) < _BODY_HEAD_SIZE:
            chunk = await resp.content.read(_BODY_HEAD_SIZE - len(head))
            if not chunk:
                break
            head += chunk
        return bytes(head)
