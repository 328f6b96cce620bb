"""Rate limits of the client API (api/ratelimit.py) on a real instance with tiny limits:
headers on every API response, 429 past a limit, separate buckets per token, user, IP and
upload, X-Forwarded-For only from a trusted proxy."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from aiohttp import ClientSession, FormData, TCPConnector
from PIL import Image

from tests.conftest import StartInstance
from tests.testrig import Instance

OOB = "urn:ietf:wg:oauth:2.0:oob"
# Windows are aligned on multiples of the period since the epoch: with 10⁹ s, this test
# never straddles two windows (the next one starts in 2033).
PERIOD = "1000000000"


async def token(inst: Instance, user: str, source: str) -> str:
    """A token, fetched from the loopback address `source`, not the tests' own calls' (so
    the per-IP limit of those calls is not spent here)."""
    scopes = "read write"
    async with ClientSession(connector=TCPConnector(local_addr=(source, 0))) as http:
        async with http.post(inst.base + "/api/v1/apps", json={
                "client_name": "tests", "redirect_uris": OOB, "scopes": scopes}) as r:
            assert r.status == 200, await r.text()
            app = await r.json()
        async with http.post(inst.base + "/oauth/token", data={
                "grant_type": "password", "username": user, "password": "password-" + user,
                "client_id": app["client_id"], "client_secret": app["client_secret"],
                "scope": scopes}) as r:
            assert r.status == 200, await r.text()
            return str((await r.json())["access_token"])


async def call(inst: Instance, method: str, path: str, tok: str | None = None, *,
               source: str = "127.0.0.1", headers: dict[str, str] | None = None,
               **kw: Any) -> tuple[int, Any, dict[str, str]]:
    """(status, JSON body, headers) of a request sent from the loopback address `source`."""
    hdrs = dict(headers or {})
    if tok:
        hdrs["Authorization"] = f"Bearer {tok}"
    async with ClientSession(connector=TCPConnector(local_addr=(source, 0))) as http:
        async with http.request(method, inst.base + path, headers=hdrs, **kw) as r:
            body = await r.json() if r.content_type == "application/json" else None
            return r.status, body, dict(r.headers)


def remaining(headers: dict[str, str]) -> int:
    return int(headers["X-RateLimit-Remaining"])


def png() -> FormData:
    buf = io.BytesIO()
    Image.new("RGB", (20, 20), (1, 2, 3)).save(buf, format="PNG")
    f = FormData()
    f.add_field("file", buf.getvalue(), filename="p.png", content_type="image/png")
    return f


async def test_per_token_user_and_ip_limits(instances: StartInstance) -> None:
    inst = await instances("127.0.0.2", oauth_password_grant="1", api_rate_limit="5",
                           api_rate_period=PERIOD, api_media_rate_limit="1",
                           api_media_rate_period=PERIOD)
    await inst.create_user("alice")
    await inst.create_user("bob")
    alice, bob = await token(inst, "alice", "127.0.0.50"), await token(inst, "bob", "127.0.0.51")

    # Authenticated: the token's bucket, counted down on every response.
    seen = []
    for _ in range(5):
        status, _, h = await call(inst, "GET", "/api/v1/accounts/verify_credentials", alice)
        assert status == 200
        assert h["X-RateLimit-Limit"] == "5"
        reset = datetime.fromisoformat(h["X-RateLimit-Reset"].replace("Z", "+00:00"))
        assert reset == datetime.fromtimestamp(2 * int(PERIOD), UTC)
        assert h["X-RateLimit-Reset"].endswith(".000000Z")
        seen.append(remaining(h))
    assert seen == [4, 3, 2, 1, 0]
    status, body, h = await call(inst, "GET", "/api/v1/accounts/verify_credentials", alice,
                                 headers={"Origin": "https://app.example"})
    assert status == 429 and body == {"error": "Too many requests"}
    assert int(h["Retry-After"]) > 0 and h["X-RateLimit-Remaining"] == "0"
    assert h["Access-Control-Allow-Origin"] == "*"
    assert "X-RateLimit-Remaining" in h["Access-Control-Expose-Headers"]
    # The exhausted token stays refused, even where no token is needed.
    assert (await call(inst, "GET", "/api/v1/instance", alice))[0] == 429

    # Another token of another user, and another token of the same user: own buckets.
    status, _, h = await call(inst, "GET", "/api/v1/accounts/verify_credentials", bob)
    assert status == 200 and remaining(h) == 4
    alice2 = await token(inst, "alice", "127.0.0.52")
    status, _, h = await call(inst, "GET", "/api/v1/accounts/verify_credentials", alice2)
    assert status == 200 and remaining(h) == 4

    # Uploads: their own, smaller bucket per user (the most constrained rule is shown).
    status, _, h = await call(inst, "POST", "/api/v2/media", bob, data=png())
    assert status == 200 and h["X-RateLimit-Limit"] == "1" and remaining(h) == 0
    status, body, h = await call(inst, "POST", "/api/v2/media", bob, data=png())
    assert status == 429 and body == {"error": "Too many requests"}, body
    status, _, h = await call(inst, "GET", "/api/v1/accounts/verify_credentials", bob)
    assert status == 200 and h["X-RateLimit-Limit"] == "5" and remaining(h) == 1

    # Without a token (or with an invalid one): per client IP.
    for expected in (4, 3, 2, 1, 0):
        status, _, h = await call(inst, "GET", "/api/v1/instance")
        assert status == 200 and remaining(h) == expected
    status, body, h = await call(inst, "GET", "/api/v1/instance")
    assert status == 429 and "Retry-After" in h
    status, _, _ = await call(inst, "GET", "/api/v1/instance", "forged-token")
    assert status == 429
    assert (await call(inst, "POST", "/oauth/token", data={"grant_type": "password"}))[0] == 429
    # … another address is unaffected, and so are tokens used from the exhausted one.
    status, _, h = await call(inst, "GET", "/api/v1/instance", source="127.0.0.9")
    assert status == 200 and remaining(h) == 4
    status, _, h = await call(inst, "GET", "/api/v1/accounts/verify_credentials", alice2)
    assert status == 200 and remaining(h) == 3
    # Errors count and carry the headers too: a handler's 404 and the router's.
    status, body, h = await call(inst, "GET", "/api/v1/media/999999", alice2)
    assert status == 404 and body == {"error": "Record not found"} and remaining(h) == 2
    status, body, h = await call(inst, "GET", "/api/v1/no/such/endpoint", alice2)
    assert status == 404 and body["error"] and remaining(h) == 1
    # A trusted proxy (loopback by default) names the client in X-Forwarded-For.
    status, _, h = await call(inst, "GET", "/api/v1/instance",
                              headers={"X-Forwarded-For": "198.51.100.7, 203.0.113.5"})
    assert status == 200 and remaining(h) == 4
    # Non-API paths are not limited and carry no headers.
    status, _, h = await call(inst, "GET", "/.well-known/nodeinfo")
    assert status == 200 and "X-RateLimit-Limit" not in h


async def test_untrusted_peer_cannot_choose_its_address(instances: StartInstance) -> None:
    inst = await instances("127.0.0.3", api_rate_limit="2", api_rate_period=PERIOD,
                           trusted_proxies="")
    for expected in (1, 0):
        status, _, h = await call(inst, "GET", "/api/v1/instance")
        assert status == 200 and remaining(h) == expected
    for forged in ("198.51.100.1", "198.51.100.2"):
        status, _, _ = await call(inst, "GET", "/api/v1/instance",
                                  headers={"X-Forwarded-For": forged})
        assert status == 429
    # The default limits are Mastodon's.
    default = await instances("127.0.0.4")
    status, _, h = await call(default, "GET", "/api/v1/instance")
    assert status == 200 and h["X-RateLimit-Limit"] == "300" and remaining(h) == 299
