"""SafeHttpClient against real aiohttp servers on loopback addresses (no network mocks)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiohttp import TraceConfig, TraceRequestStartParams, web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer

from t3r1_fed.federation.hosts import is_blocked_address
from t3r1_fed.federation.http_client import (
    AS2_ACCEPT,
    BadContentType,
    BlockedAddressError,
    FetchError,
    GuardedResolver,
    HttpStatusError,
    IdMismatch,
    PostResult,
    ResponseTooLarge,
    SafeHttpClient,
    TooManyRedirects,
    _guarded_socket_factory,
    parse_retry_after,
)

LOOPBACK = [ipaddress.IPv4Network("127.0.0.0/8")]
AS2 = "application/activity+json"
LD = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
MIB = 1_048_576
STATE = web.AppKey("state", dict[str, Any])


def _json(doc: dict[str, Any], content_type: str = AS2, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(doc), status=status, headers={"Content-Type": content_type}
    )


def _base(request: web.Request) -> str:
    return f"http://{request.host}"


async def _doc(request: web.Request) -> web.Response:
    return _json({"id": f"{_base(request)}{request.path}", "type": "Note"})


async def _ld(request: web.Request) -> web.Response:
    return _json({"id": f"{_base(request)}{request.path}"}, LD)


async def _plain_json(request: web.Request) -> web.Response:
    return _json({"id": f"{_base(request)}{request.path}"}, "application/json")


async def _html(request: web.Request) -> web.Response:
    return web.Response(text="<html></html>", content_type="text/html")


async def _list(request: web.Request) -> web.Response:
    return web.Response(body=b"[1, 2]", content_type=AS2)


async def _big(request: web.Request) -> web.Response:
    return web.Response(body=b" " * (MIB + 1), content_type=AS2)


async def _big_chunked(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": AS2})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    with contextlib.suppress(ConnectionError):
        for _ in range(20):  # 20 x 64 KiB > 1 MiB, no Content-Length
            await resp.write(b" " * 65536)
        await resp.write_eof()
    return resp


async def _foreign_id(request: web.Request) -> web.Response:
    return _json({"id": "http://other.example/objects/1"})


async def _alias(request: web.Request) -> web.Response:
    # served under another URL of the same host; the canonical copy is at /canonical
    return _json({"id": f"{_base(request)}/canonical", "type": "Note", "copy": True})


async def _canonical(request: web.Request) -> web.Response:
    return _json({"id": f"{_base(request)}/canonical", "type": "Note"})


async def _alias_liar(request: web.Request) -> web.Response:
    return _json({"id": f"{_base(request)}/liar-target"})


async def _liar_target(request: web.Request) -> web.Response:
    return _json({"id": f"{_base(request)}/somewhere-else"})


async def _no_id(request: web.Request) -> web.Response:
    return _json({"type": "Note"})


async def _redirect(request: web.Request) -> web.Response:
    n = int(request.match_info["n"])
    if n == 0:
        return _json({"id": f"{_base(request)}/redirect/0"})
    raise web.HTTPFound(f"/redirect/{n - 1}")


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(1.0)
    return _json({"id": f"{_base(request)}/slow"})


async def _busy(request: web.Request) -> web.Response:
    counters = request.app[STATE]
    counters["now"] += 1
    counters["max"] = max(counters["max"], counters["now"])
    await asyncio.sleep(0.05)
    counters["now"] -= 1
    return _json({"id": f"{_base(request)}{request.path}"})


async def _rate_limited(request: web.Request) -> web.Response:
    return web.Response(status=429, headers={"Retry-After": "30"})


async def _jrd(request: web.Request) -> web.Response:
    return _json({"subject": "acct:a@example.com"}, "application/jrd+json")


async def _inbox(request: web.Request) -> web.Response:
    request.app[STATE]["posted"] = (await request.read(), request.headers["Content-Type"])
    kind = request.match_info["kind"]
    if kind == "accepted":
        return web.Response(status=202, body=b"x" * 5000)
    if kind == "seconds":
        return web.Response(status=429, headers={"Retry-After": "120"})
    if kind == "date":
        when = datetime.now(UTC) + timedelta(seconds=60)
        return web.Response(status=503, headers={"Retry-After": format_datetime(when, usegmt=True)})
    raise web.HTTPFound("/elsewhere")


@web.middleware
async def _count(request: web.Request, handler: Any) -> web.StreamResponse:
    request.app[STATE]["hits"] += 1
    resp: web.StreamResponse = await handler(request)
    return resp


def _app() -> web.Application:
    app = web.Application(middlewares=[_count])
    app[STATE] = {"hits": 0, "now": 0, "max": 0}
    for path, handler in [
        ("/doc", _doc),
        ("/ld", _ld),
        ("/json", _plain_json),
        ("/html", _html),
        ("/list", _list),
        ("/big", _big),
        ("/big-chunked", _big_chunked),
        ("/foreign-id", _foreign_id),
        ("/alias", _alias),
        ("/canonical", _canonical),
        ("/alias-liar", _alias_liar),
        ("/liar-target", _liar_target),
        ("/no-id", _no_id),
        ("/redirect/{n}", _redirect),
        ("/slow", _slow),
        ("/busy/{i}", _busy),
        ("/rate-limited", _rate_limited),
        ("/.well-known/webfinger", _jrd),
    ]:
        app.router.add_get(path, handler)
    app.router.add_post("/inbox/{kind}", _inbox)
    return app


@contextlib.asynccontextmanager
async def _serve(app: web.Application, host: str = "127.0.0.1") -> AsyncIterator[str]:
    server = TestServer(app, host=host)
    await server.start_server()
    try:
        yield f"http://{host}:{server.port}"
    finally:
        await server.close()


@pytest.fixture
async def origin() -> AsyncIterator[SimpleNamespace]:
    app = _app()
    async with _serve(app) as base:
        yield SimpleNamespace(base=base, state=app[STATE])


@pytest.fixture
async def client() -> AsyncIterator[SafeHttpClient]:
    async with SafeHttpClient(allow_private=LOOPBACK, allow_http=True, user_agent="t") as c:
        yield c


# --- happy paths and content checks ---


async def test_get_json_loopback_allowed(client: SafeHttpClient, origin: SimpleNamespace) -> None:
    assert await client.get_json(f"{origin.base}/doc") == {
        "id": f"{origin.base}/doc",
        "type": "Note",
    }
    assert (await client.get_json(f"{origin.base}/ld"))["id"] == f"{origin.base}/ld"


async def test_fragment_not_sent(client: SafeHttpClient, origin: SimpleNamespace) -> None:
    # e.g. a key id "…/actor#main-key": the document at "…/actor" is its own id
    assert (await client.get_json(f"{origin.base}/doc#main-key"))["id"] == f"{origin.base}/doc"
    assert origin.state["hits"] == 1


async def test_get_json_via_hostname(client: SafeHttpClient, origin: SimpleNamespace) -> None:
    url = origin.base.replace("127.0.0.1", "localhost") + "/doc"
    assert (await client.get_json(url))["id"] == url


@pytest.mark.parametrize("path", ["/json", "/html"])
async def test_bad_content_type(client: SafeHttpClient, origin: SimpleNamespace, path: str) -> None:
    with pytest.raises(BadContentType):
        await client.get_json(origin.base + path)


async def test_not_an_object(client: SafeHttpClient, origin: SimpleNamespace) -> None:
    with pytest.raises(FetchError):
        await client.get_json(f"{origin.base}/list")


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
async def test_too_large(client: SafeHttpClient, origin: SimpleNamespace, path: str) -> None:
    with pytest.raises(ResponseTooLarge):
        await client.get_json(origin.base + path)


async def test_id_mismatch(client: SafeHttpClient, origin: SimpleNamespace) -> None:
    for path in ["/foreign-id", "/alias-liar", "/no-id"]:
        with pytest.raises(IdMismatch):
            await client.get_json(origin.base + path)


async def test_id_mismatch_same_host_refetch(
    client: SafeHttpClient, origin: SimpleNamespace
) -> None:
    doc = await client.get_json(f"{origin.base}/alias")
    assert doc == {"id": f"{origin.base}/canonical", "type": "Note"}  # the canonical copy
    assert origin.state["hits"] == 2


async def test_redirects_followed_and_signed(
    client: SafeHttpClient, origin: SimpleNamespace
) -> None:
    calls: list[tuple[str, str, bytes | None]] = []

    def signer(method: str, url: str, body: bytes | None) -> Mapping[str, str]:
        calls.append((method, url, body))
        return {"Signature": "test"}

    doc = await client.get_json(f"{origin.base}/redirect/3", signer=signer)
    assert doc["id"] == f"{origin.base}/redirect/0"
    assert calls == [("GET", f"{origin.base}/redirect/{n}", None) for n in (3, 2, 1, 0)]


async def test_too_many_redirects(client: SafeHttpClient, origin: SimpleNamespace) -> None:
    with pytest.raises(TooManyRedirects):
        await client.get_json(f"{origin.base}/redirect/4")
    assert origin.state["hits"] == 4  # the fifth hop is never requested


async def test_http_status(client: SafeHttpClient, origin: SimpleNamespace) -> None:
    with pytest.raises(HttpStatusError) as info:
        await client.get_json(f"{origin.base}/missing")
    assert info.value.status == 404
    with pytest.raises(HttpStatusError) as info:
        await client.get_json(f"{origin.base}/rate-limited")
    assert (info.value.status, info.value.retry_after) == (429, 30.0)


async def test_timeout(origin: SimpleNamespace) -> None:
    async with SafeHttpClient(allow_private=LOOPBACK, allow_http=True, read_timeout=0.2) as c:
        with pytest.raises(FetchError) as info:
            await c.get_json(f"{origin.base}/slow")
    assert isinstance(info.value.__cause__, TimeoutError)


async def test_get_jrd(client: SafeHttpClient, origin: SimpleNamespace) -> None:
    url = f"{origin.base}/.well-known/webfinger?resource=acct:a@example.com"
    assert await client.get_jrd(url) == {"subject": "acct:a@example.com"}
    with pytest.raises(BadContentType):
        await client.get_jrd(f"{origin.base}/html")


async def test_per_host_cap(origin: SimpleNamespace) -> None:
    async with SafeHttpClient(
        allow_private=LOOPBACK, allow_http=True, max_in_flight_per_host=2
    ) as c:
        await asyncio.gather(*(c.get_json(f"{origin.base}/busy/{i}") for i in range(8)))
    assert origin.state["max"] == 2


async def test_not_started() -> None:
    with pytest.raises(RuntimeError):
        await SafeHttpClient().get_json("https://example.com/")


# --- SSRF guard ---


def _request_counter() -> tuple[TraceConfig, list[str]]:
    started: list[str] = []

    async def on_start(_s: Any, _c: Any, params: TraceRequestStartParams) -> None:
        started.append(str(params.url))

    trace = TraceConfig()
    trace.on_request_start.append(on_start)
    return trace, started


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://100.64.0.1/",
        "http://[fd00::1]/",
    ],
)
async def test_literal_addresses_refused_without_connecting(url: str) -> None:
    trace, started = _request_counter()
    async with SafeHttpClient(allow_http=True, trace_configs=[trace]) as c:
        with pytest.raises(BlockedAddressError):
            await c.get_json(url)
        with pytest.raises(BlockedAddressError):
            await c.post(url, b"{}", headers={"Content-Type": AS2})
    assert started == []


async def test_loopback_server_refused_without_allowance(origin: SimpleNamespace) -> None:
    async with SafeHttpClient(allow_http=True) as c:
        for base in (origin.base, origin.base.replace("127.0.0.1", "localhost")):
            with pytest.raises(BlockedAddressError):
                await c.get_json(f"{base}/doc")
    assert origin.state["hits"] == 0


async def test_plain_http_refused(origin: SimpleNamespace) -> None:
    async with SafeHttpClient(allow_private=LOOPBACK, allow_http=False) as c:
        with pytest.raises(BlockedAddressError):
            await c.get_json(f"{origin.base}/doc")
        with pytest.raises(BlockedAddressError):
            await c.post(f"{origin.base}/inbox/accepted", b"{}", headers={})
    assert origin.state["hits"] == 0


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/", "https://user@example.com/", "/relative", "http://127.1/"],
)
async def test_invalid_urls(client: SafeHttpClient, url: str) -> None:
    with pytest.raises(FetchError):
        await client.get_json(url)


@pytest.mark.parametrize("target_host", ["127.0.0.1", "localhost"])
async def test_redirect_to_private_refused(origin: SimpleNamespace, target_host: str) -> None:
    target = origin.base.replace("127.0.0.1", target_host) + "/doc"

    async def bounce(request: web.Request) -> web.Response:
        raise web.HTTPFound(target)

    public = web.Application()
    public.router.add_get("/go", bounce)
    public.router.add_get("/doc", _doc)
    async with (
        _serve(public, host="127.0.0.2") as public_base,
        SafeHttpClient(allow_private=[ipaddress.IPv4Network("127.0.0.2/32")], allow_http=True) as c,
    ):
        assert (await c.get_json(f"{public_base}/doc"))["id"] == f"{public_base}/doc"
        with pytest.raises(BlockedAddressError):
            await c.get_json(f"{public_base}/go")
    assert origin.state["hits"] == 0


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "0.1.2.3",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "fe80::1",
        "fe80::1%1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "fec0::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo
        "not an address",
    ],
)
def test_blocked_addresses(address: str) -> None:
    assert is_blocked_address(address)


@pytest.mark.parametrize(
    "address",
    ["93.184.216.34", "8.8.8.8", "2606:2800:220:1::1", "::ffff:8.8.8.8", "2002:808:808::1"],
)
def test_public_addresses(address: str) -> None:
    assert not is_blocked_address(address)


def test_allowance() -> None:
    assert not is_blocked_address("127.0.0.1", LOOPBACK)
    assert not is_blocked_address("::ffff:127.0.0.1", LOOPBACK)
    assert is_blocked_address("::1", LOOPBACK)
    assert is_blocked_address("127.0.0.1", [ipaddress.IPv4Network("127.0.0.2/32")])


class _StubDns(AbstractResolver):
    """A fixed DNS answer, to check the filter on names that do not resolve locally."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers
        self.closed = False

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=0, proto=0, flags=0)
            for a in self.answers
        ]

    async def close(self) -> None:
        self.closed = True


async def test_guarded_resolver_filters() -> None:
    inner = _StubDns(["10.0.0.1", "93.184.216.34", "::1", "2606:2800:220:1::1"])
    resolver = GuardedResolver((), inner)
    kept = await resolver.resolve("mixed.example", 443)
    assert [a["host"] for a in kept] == ["93.184.216.34", "2606:2800:220:1::1"]
    inner.answers = ["10.0.0.1", "fe80::1%1", "127.0.0.1"]
    with pytest.raises(BlockedAddressError):
        await resolver.resolve("rebind.example", 443)
    await resolver.close()
    assert inner.closed


def test_socket_factory_last_resort() -> None:
    factory = _guarded_socket_factory(LOOPBACK)
    with pytest.raises(PermissionError):
        factory((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", 80)))
    factory((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 80))).close()


# --- POST ---


async def test_post(client: SafeHttpClient, origin: SimpleNamespace) -> None:
    headers = {"Content-Type": AS2}
    res = await client.post(f"{origin.base}/inbox/accepted", b'{"a":1}', headers=headers)
    assert res == PostResult(status=202, retry_after=None, body_head=b"x" * 2048)
    assert origin.state["posted"] == (b'{"a":1}', AS2)

    res = await client.post(f"{origin.base}/inbox/seconds", b"{}", headers=headers)
    assert (res.status, res.retry_after) == (429, 120.0)

    res = await client.post(f"{origin.base}/inbox/date", b"{}", headers=headers)
    assert res.status == 503
    assert res.retry_after is not None and 55.0 <= res.retry_after <= 61.0

    res = await client.post(f"{origin.base}/inbox/redirect", b"{}", headers=headers)
    assert res.status == 302  # not followed
    assert origin.state["hits"] == 4


def test_parse_retry_after() -> None:
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after(None) is None
    assert parse_retry_after(" 42 ") == 42.0
    assert parse_retry_after("Wed, 01 Jan 2025 12:01:30 GMT", now=now) == 90.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("-5") is None
    assert parse_retry_after("soon") is None


def test_accept_header() -> None:
    assert AS2_ACCEPT.startswith("application/activity+json")
