"""Mastodon.py (PyPI `Mastodon.py` ≥ 2) logs into our instance as a Mastodon app would.

The client is the real library: it registers the app (`create_app`), builds the authorize
URL (`auth_request_url`, which reads our RFC 8414 metadata), exchanges the code
(`log_in`), and parses `verify_credentials` and `instance`. The browser part of the flow
(GET the French form, POST the credentials, follow the redirect) is done with aiohttp,
reading the form as a browser would. Mastodon.py is synchronous: it runs in a thread
against the real server started by the `instances` fixture.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import secrets
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
from aiohttp import ClientSession, CookieJar

from tests.conftest import StartInstance
from tests.interop._support import require
from tests.testrig import Instance

pytestmark = pytest.mark.interop

mastodon = require("mastodon", "Mastodon.py>=2")
Mastodon: Any = mastodon.Mastodon

OOB = "urn:ietf:wg:oauth:2.0:oob"
APP_REDIRECT = "fr.t3r1.app://oauth-callback"
SCOPES = ["read", "write", "follow"]


class _Form(HTMLParser):
    """The first <form>: its action, method and every named input's value."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.method = "get"
        self.fields: dict[str, str] = {}
        self._in = False
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and not self._done:
            self._in = True
            self.action, self.method = a.get("action", ""), a.get("method", "get").lower()
        elif tag == "input" and self._in and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._in:
            self._in, self._done = False, True


async def browser_authorize(
    url: str, username: str, password: str
) -> tuple[int, str, dict[str, str]]:
    """GET the authorize page, fill and POST its form; (status, location or body, fields)."""
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
        async with http.get(url) as r:
            assert r.status == 200, await r.text()
            assert r.content_type == "text/html"
            page = await r.text()
        assert 'lang="fr"' in page and "Mot de passe" in page
        form = _Form()
        form.feed(page)
        assert form.method == "post"
        data = dict(form.fields, username=username, password=password)
        async with http.post(urljoin(url, form.action), data=data,
                             allow_redirects=False) as r:
            if r.status in (302, 303):
                return r.status, r.headers["Location"], form.fields
            return r.status, await r.text(), form.fields


def code_from(status: int, result: str, redirect: str) -> str:
    if redirect == OOB:
        assert status == 200, result
        m = re.search(r'<code id="code">([^<]+)</code>', result)
        assert m, result
        return m.group(1)
    assert status == 302, result
    assert result.startswith(redirect + "?")
    return parse_qs(urlsplit(result).query)["code"][0]


async def register(inst: Instance, scopes: list[str], redirect: str) -> tuple[str, str]:
    cid, secret = await asyncio.to_thread(
        Mastodon.create_app, "Appli syndicale", scopes=scopes,
        redirect_uris=[redirect, OOB] if redirect != OOB else redirect,
        website="https://example.org/app", api_base_url=inst.base,
    )
    return str(cid), str(secret)


def client(inst: Instance, cid: str, secret: str, token: str | None = None) -> Any:
    return Mastodon(client_id=cid, client_secret=secret, access_token=token,
                    api_base_url=inst.base, version_check_mode="none")


async def code_login(inst: Instance, user: str, scopes: list[str], redirect: str) -> Any:
    cid, secret = await register(inst, scopes, redirect)
    m = client(inst, cid, secret)
    url = await asyncio.to_thread(
        m.auth_request_url, redirect_uris=redirect, scopes=scopes, state="xyz", allow_http=True
    )
    assert url.startswith(inst.base + "/oauth/authorize")
    status, result, _ = await browser_authorize(url, user, "password-" + user)
    code = code_from(status, result, redirect)
    if redirect != OOB:
        assert "state=xyz" in result
    await asyncio.to_thread(m.log_in, code=code, redirect_uri=redirect, scopes=scopes,
                            allow_http=True)
    return m


@pytest.mark.parametrize("redirect", [APP_REDIRECT, OOB])
async def test_authorization_code_flow_verify_credentials_and_instance(
    instances: StartInstance, redirect: str
) -> None:
    inst = await instances("127.0.0.2")
    await inst.create_user("alice", admin=True)
    m = await code_login(inst, "alice", SCOPES, redirect)

    me = await asyncio.to_thread(m.account_verify_credentials)
    assert me["username"] == "alice" and me["acct"] == "alice"
    for key in ("id", "url", "avatar", "header", "note", "created_at", "display_name",
                "locked", "bot", "group", "followers_count", "following_count",
                "statuses_count", "emojis", "fields"):
        assert key in me, key
    assert me["group"] is False
    assert set(me["source"]) >= {"note", "fields", "privacy", "sensitive", "language"}

    v1 = await asyncio.to_thread(m.instance_v1)
    assert v1["uri"] == inst.domain
    assert re.fullmatch(r"4\.3\.0 \(compatible; t3r1-fed \d+\.\d+.*\)", v1["version"])
    assert v1["languages"] == ["fr", "en"] and v1["registrations"] is False
    assert v1["urls"]["streaming_api"] == f"ws://{inst.domain}"  # streaming/, over http
    assert v1["contact_account"]["username"] == "alice"
    v2 = await asyncio.to_thread(m.instance_v2)
    assert v2["domain"] == inst.domain and v2["version"] == v1["version"]
    assert v2["configuration"]["urls"]["streaming"] == f"ws://{inst.domain}"
    for key in ("urls", "accounts", "statuses", "media_attachments", "polls"):
        assert key in v2["configuration"], key

    # The avatar placeholder is a real image; CORS lets browsers send the Authorization header.
    async with ClientSession() as http:
        async with http.get(me["avatar"]) as r:
            assert r.status == 200 and r.content_type == "image/png"
        async with http.options(inst.base + "/api/v1/accounts/verify_credentials",
                                headers={"Origin": "https://elk.zone"}) as r:
            assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
        async with http.get(inst.base + "/.well-known/oauth-authorization-server") as r:
            meta = await r.json()
        assert meta["code_challenge_methods_supported"] == ["S256"]
        assert {"read", "write", "follow", "push", "read:statuses"} <= set(meta["scopes_supported"])
        assert "password" not in meta["grant_types_supported"]


async def test_form_refuses_bad_password_and_forged_token(instances: StartInstance) -> None:
    inst = await instances("127.0.0.2")
    await inst.create_user("alice")
    cid, secret = await register(inst, SCOPES, APP_REDIRECT)
    url = await asyncio.to_thread(client(inst, cid, secret).auth_request_url,
                                  redirect_uris=APP_REDIRECT, scopes=SCOPES, allow_http=True)
    status, body, fields = await browser_authorize(url, "alice", "wrong password")
    assert status == 401 and "incorrect" in body
    # A cross-site POST carries neither our cookie nor a token bound to it.
    async with ClientSession() as http:
        data = dict(fields, username="alice", password="password-alice")
        async with http.post(inst.base + "/oauth/authorize", data=data,
                             allow_redirects=False) as r:
            assert r.status == 403
        # An unregistered redirect URI is refused before any form is shown.
        bad = url.replace("fr.t3r1.app", "evil.example")
        async with http.get(bad) as r:
            assert r.status == 400


async def test_password_grant_only_when_enabled(instances: StartInstance) -> None:
    off = await instances("127.0.0.2")
    await off.create_user("alice")
    cid, secret = await register(off, SCOPES, OOB)
    m = client(off, cid, secret)
    # Mastodon.py reads grant_types_supported in our RFC 8414 metadata and refuses itself …
    with pytest.raises(mastodon.MastodonIllegalArgumentError, match="code flow"):
        await asyncio.to_thread(m.log_in, "alice", "password-alice", scopes=SCOPES,
                                allow_http=True)
    # … and a client that tries anyway gets a clear OAuth error.
    async with ClientSession() as http:
        async with http.post(off.base + "/oauth/token", data={
            "grant_type": "password", "username": "alice", "password": "password-alice",
            "client_id": cid, "client_secret": secret, "scope": "read"}) as r:
            doc = await r.json()
    assert r.status == 400 and doc["error"] == "unsupported_grant_type"
    assert "password grant is disabled" in doc["error_description"]

    on = await instances("127.0.0.3", oauth_password_grant="1")
    await on.create_user("bob")
    cid, secret = await register(on, SCOPES, OOB)
    m = client(on, cid, secret)
    await asyncio.to_thread(m.log_in, "bob", "password-bob", scopes=SCOPES, allow_http=True)
    me = await asyncio.to_thread(m.account_verify_credentials)
    assert me["username"] == "bob"
    with pytest.raises(mastodon.MastodonIllegalArgumentError):
        await asyncio.to_thread(client(on, cid, secret).log_in, "bob", "nope", scopes=SCOPES,
                                allow_http=True)


async def test_pkce_s256_and_single_use_codes(instances: StartInstance) -> None:
    inst = await instances("127.0.0.2")
    await inst.create_user("alice")
    cid, secret = await register(inst, SCOPES, APP_REDIRECT)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    url = await asyncio.to_thread(client(inst, cid, secret).auth_request_url,
                                  redirect_uris=APP_REDIRECT, scopes=SCOPES, allow_http=True)
    url += f"&code_challenge={challenge}&code_challenge_method=S256"

    async def exchange(code: str, verifier: str) -> tuple[int, dict[str, Any]]:
        async with ClientSession() as http:
            async with http.post(inst.base + "/oauth/token", data={
                "grant_type": "authorization_code", "code": code, "client_id": cid,
                "client_secret": secret, "redirect_uri": APP_REDIRECT,
                "code_verifier": verifier,
            }) as r:
                return r.status, await r.json()

    status, loc, fields = await browser_authorize(url, "alice", "password-alice")
    assert fields["code_challenge"] == challenge
    code = code_from(status, loc, APP_REDIRECT)
    st, doc = await exchange(code, secrets.token_urlsafe(48))
    assert st == 400 and doc["error"] == "invalid_grant"
    # The failed attempt consumed the code: even the right verifier is now too late.
    st, doc = await exchange(code, verifier)
    assert st == 400

    status, loc, _ = await browser_authorize(url, "alice", "password-alice")
    code = code_from(status, loc, APP_REDIRECT)
    st, doc = await exchange(code, verifier)
    assert st == 200 and doc["token_type"] == "Bearer" and doc["scope"] == "read write follow"
    me = await asyncio.to_thread(client(inst, cid, secret, doc["access_token"])
                                 .account_verify_credentials)
    assert me["username"] == "alice"
    st, _ = await exchange(code, verifier)  # single use
    assert st == 400


async def test_revoke_and_scopes(instances: StartInstance) -> None:
    inst = await instances("127.0.0.2")
    await inst.create_user("alice")
    m = await code_login(inst, "alice", SCOPES, OOB)
    await asyncio.to_thread(m.account_verify_credentials)
    token = m.access_token
    await asyncio.to_thread(m.revoke_access_token, allow_http=True)
    async with ClientSession() as http:
        async with http.get(inst.base + "/api/v1/accounts/verify_credentials",
                            headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 401 and r.content_type == "application/json"
            assert "error" in await r.json()
    with pytest.raises(mastodon.MastodonUnauthorizedError):
        await asyncio.to_thread(client(inst, "x", "y", token).account_verify_credentials)

    # A token without read (write only) may not read the account: 403.
    w = await code_login(inst, "alice", ["write:statuses"], OOB)
    with pytest.raises(mastodon.MastodonAPIError) as e:
        await asyncio.to_thread(w.account_verify_credentials)
    assert e.value.args[1] == 403
    # Granular read:accounts is enough; client_credentials tokens carry no user (422).
    g = await code_login(inst, "alice", ["read:accounts"], OOB)
    assert (await asyncio.to_thread(g.account_verify_credentials))["username"] == "alice"
    async with ClientSession() as http:
        async with http.post(inst.base + "/api/v1/apps", json={
            "client_name": "script", "redirect_uris": [OOB, APP_REDIRECT],
            "scopes": ["read", "write:statuses"]}) as r:
            app = await r.json()
            assert r.status == 200 and app["name"] == "script" and app["client_secret"]
            assert app["redirect_uris"] == [OOB, APP_REDIRECT]
            assert app["scopes"] == ["read", "write:statuses"]
        async with http.post(inst.base + "/oauth/token", json={
            "grant_type": "client_credentials", "client_id": app["client_id"],
            "client_secret": app["client_secret"], "scope": "read"}) as r:
            tok = (await r.json())["access_token"]
        async with http.get(inst.base + "/api/v1/accounts/verify_credentials",
                            headers={"Authorization": f"Bearer {tok}"}) as r:
            assert r.status == 422
        async with http.post(inst.base + "/api/v1/apps", data={
            "client_name": "x", "redirect_uris": "javascript:alert(1)"}) as r:
            assert r.status == 422
