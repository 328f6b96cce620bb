"""A tiny client for the Mastodon API of a test instance (password grant, aiohttp)."""

from __future__ import annotations

from typing import Any

from aiohttp import ClientSession

from tests.testrig import Instance

OOB = "urn:ietf:wg:oauth:2.0:oob"


async def token(inst: Instance, user: str, scopes: str = "read write follow") -> str:
    """A user token by the password grant (the instance needs oauth_password_grant="1")."""
    async with ClientSession() as http:
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


async def call(
    inst: Instance, method: str, path: str, tok: str | None = None, **kw: Any
) -> tuple[int, Any, str]:
    """(status, JSON body or text, Link header)."""
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    url = path if path.startswith("http") else inst.base + path
    async with ClientSession() as http:
        async with http.request(method, url, headers=headers, **kw) as r:
            body: Any = await r.json() if r.content_type == "application/json" else await r.text()
            return r.status, body, r.headers.get("Link", "")


def link(header: str, rel: str) -> str | None:
    for part in header.split(","):
        url, _, rest = part.strip().partition(";")
        if f'rel="{rel}"' in rest:
            return url.strip().strip("<>")
    return None
