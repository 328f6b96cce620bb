"""OAuth2 endpoints: POST /api/v1/apps, /oauth/authorize (French login + consent page),
/oauth/token, /oauth/revoke and RFC 8414 metadata."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import html
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import urlencode, urlsplit

import orjson
from aiohttp import web
from sqlalchemy import CursorResult, delete, select, update

from t3r1_fed.actors.local import check_password, hash_password
from t3r1_fed.appkeys import CTX
from t3r1_fed.db.models import Actor, User
from t3r1_fed.db.models_api import OAuthApp, OAuthCode, OAuthToken
from t3r1_fed.httputil import json_error, json_response
from t3r1_fed.oauth import scopes as sc
from t3r1_fed.oauth.auth import digest, new_secret

OOB = "urn:ietf:wg:oauth:2.0:oob"
CODE_TTL = timedelta(minutes=10)
FORM_TTL = 3600
CSRF_COOKIE = "t3r1_oauth_csrf"
MAX_PARAM = 4096


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return json_response({"error": error, "error_description": description}, status=status)


async def params(request: web.Request) -> dict[str, Any]:
    """Query, then form or JSON body (later wins), as Mastodon accepts both."""
    out: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = orjson.loads(await request.read())
            except orjson.JSONDecodeError as e:
                raise web.HTTPBadRequest(reason="invalid JSON") from e
            if not isinstance(body, dict):
                raise web.HTTPBadRequest(reason="a JSON object is expected")
            out.update(body)
        else:
            form = await request.post()
            for key in form:
                values = form.getall(key)
                out[key] = [str(v) for v in values] if len(values) > 1 else str(values[0])
    return out


def _str(p: dict[str, Any], key: str) -> str:
    v = p.get(key)
    if isinstance(v, list):
        v = v[0] if v else ""
    s = "" if v is None else str(v)
    if len(s) > MAX_PARAM:
        raise web.HTTPBadRequest(reason=f"{key} is too long")
    return s


def _valid_redirect(uri: str) -> bool:
    if uri == OOB:
        return True
    parts = urlsplit(uri)
    if not parts.scheme or parts.fragment:
        return False
    if parts.scheme in {"http", "https"}:
        return bool(parts.netloc)
    return parts.scheme not in {"javascript", "data", "file", "vbscript"}


def _app_entity(app: OAuthApp, secret: str | None) -> dict[str, Any]:
    uris = app.redirect_uris.split("\n")
    doc: dict[str, Any] = {
        "id": str(app.id),
        "name": app.name,
        "website": app.website,
        "scopes": app.scopes.split(),
        "redirect_uri": "\n".join(uris),
        "redirect_uris": uris,
        "client_id": app.client_id,
        "vapid_key": "",
    }
    if secret is not None:
        doc["client_secret"] = secret
        doc["client_secret_expires_at"] = 0
    return doc


async def create_app(request: web.Request) -> web.Response:
    p = await params(request)
    name = _str(p, "client_name").strip()
    if not name or len(name) > 255:
        return json_error(422, "Validation failed: Application name can't be blank")
    raw_uris = p.get("redirect_uris") or ""
    uris = raw_uris if isinstance(raw_uris, list) else str(raw_uris).split()
    uris = [str(u).strip() for u in uris if str(u).strip()]
    if not uris or len(uris) > 10 or not all(_valid_redirect(u) and len(u) < 2048 for u in uris):
        return json_error(422, "Validation failed: Redirect URI must be an absolute URI.")
    try:
        raw_scopes = p.get("scopes")
        scopes = sc.parse(" ".join(map(str, raw_scopes)) if isinstance(raw_scopes, list)
                          else _str(p, "scopes"))
    except sc.ScopeError as e:
        return json_error(422, f"Validation failed: {e}")
    website = _str(p, "website").strip() or None
    secret = new_secret()
    ctx = request.app[CTX]
    async with ctx.sessions() as s, s.begin():
        app = OAuthApp(
            client_id=new_secret(), client_secret_hash=digest(secret), name=name,
            website=website, redirect_uris="\n".join(uris), scopes=" ".join(scopes),
        )
        s.add(app)
        await s.flush()
        doc = _app_entity(app, secret)
    return json_response(doc)


# ---- authorize -----------------------------------------------------------------------------

def _form_token(csrf: str, fields: list[str], ts: int) -> str:
    msg = "\x00".join([*fields, str(ts)]).encode()
    mac = hmac.new(csrf.encode(), msg, hashlib.sha256).hexdigest()
    return f"{ts}.{mac}"


def _check_form_token(csrf: str | None, fields: list[str], token: str) -> bool:
    if not csrf:
        return False
    ts_s, _, _mac = token.partition(".")
    try:
        ts = int(ts_s)
    except ValueError:
        return False
    if not 0 <= datetime.now(UTC).timestamp() - ts <= FORM_TTL:
        return False
    return hmac.compare_digest(_form_token(csrf, fields, ts), token)


class _AuthRequest:
    def __init__(self, app: OAuthApp, redirect_uri: str, scopes: tuple[str, ...],
                 state: str, challenge: str) -> None:
        self.app = app
        self.redirect_uri = redirect_uri
        self.scopes = scopes
        self.state = state
        self.challenge = challenge

    def fields(self) -> list[str]:
        return [self.app.client_id, self.redirect_uri, " ".join(self.scopes), self.state,
                self.challenge]


async def _auth_request(request: web.Request, p: dict[str, Any]) -> _AuthRequest | web.Response:
    client_id = _str(p, "client_id")
    ctx = request.app[CTX]
    async with ctx.sessions() as s:
        app = (await s.execute(select(OAuthApp).where(OAuthApp.client_id == client_id))).scalar()
    if app is None:
        return _page(400, "Application inconnue", "<p>Cette application n’est pas enregistrée.</p>")
    redirect_uri = _str(p, "redirect_uri")
    if redirect_uri not in app.redirect_uris.split("\n"):
        return _page(400, "Adresse de retour invalide",
                     "<p>L’adresse de retour ne correspond pas à l’application.</p>")
    rtype = _str(p, "response_type") or "code"
    if rtype != "code":
        return _page(400, "Requête invalide", "<p>Seul response_type=code est accepté.</p>")
    try:
        scopes = sc.parse(_str(p, "scope") or _str(p, "scopes") or app.scopes)
    except sc.ScopeError as e:
        return _page(400, "Permissions invalides", f"<p>{html.escape(str(e))}</p>")
    if not sc.subset(scopes, tuple(app.scopes.split())):
        return _page(400, "Permissions invalides",
                     "<p>L’application demande plus que ce qu’elle a déclaré.</p>")
    challenge = _str(p, "code_challenge")
    method = _str(p, "code_challenge_method") or ("S256" if challenge else "")
    if challenge and (method != "S256" or not 43 <= len(challenge) <= 128):
        return _page(400, "Requête invalide", "<p>Seul PKCE S256 est accepté.</p>")
    return _AuthRequest(app, redirect_uri, scopes, _str(p, "state"), challenge)


SCOPE_FR = {
    "read": "lire toutes les données de votre compte",
    "write": "modifier toutes les données de votre compte",
    "follow": "gérer vos abonnements et blocages",
    "push": "recevoir des notifications push",
    "profile": "lire votre profil",
}


def _page(status: int, title: str, body: str, **headers: str) -> web.Response:
    doc = (
        "<!doctype html><html lang=\"fr\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;"
        "padding:0 1rem}label,input,button{display:block;width:100%;margin:.4rem 0}"
        "code{word-break:break-all}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    resp = web.Response(status=status, text=doc, content_type="text/html", headers=headers)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Frame-Options"] = "DENY"
    # No form-action: browsers apply it to the redirect to the app's (custom) scheme.
    resp.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return resp


def _consent_page(
    request: web.Request, ar: _AuthRequest, csrf: str, *, error: str | None = None
) -> web.Response:
    e = html.escape
    token = _form_token(csrf, ar.fields(), int(datetime.now(UTC).timestamp()))
    items = "".join(
        f"<li><code>{e(s)}</code> — {e(SCOPE_FR[s])}</li>" if s in SCOPE_FR
        else f"<li><code>{e(s)}</code></li>"
        for s in ar.scopes
    )
    hidden = {
        "client_id": ar.app.client_id, "redirect_uri": ar.redirect_uri,
        "scope": " ".join(ar.scopes), "state": ar.state, "code_challenge": ar.challenge,
        "code_challenge_method": "S256" if ar.challenge else "", "response_type": "code",
        "form_token": token,
    }
    inputs = "".join(
        f'<input type="hidden" name="{e(k)}" value="{e(v)}">' for k, v in hidden.items()
    )
    err = f'<p role="alert"><strong>{e(error)}</strong></p>' if error else ""
    body = (
        f"<p>L’application <strong>{e(ar.app.name)}</strong> demande l’accès à votre compte "
        f"sur {e(request.app[CTX].settings.domain)} avec ces permissions :</p><ul>{items}</ul>"
        f'{err}<form method="post" action="/oauth/authorize">{inputs}'
        '<label for="username">Nom d’utilisateur</label>'
        '<input id="username" name="username" autocomplete="username" required>'
        '<label for="password">Mot de passe</label>'
        '<input id="password" name="password" type="password" '
        'autocomplete="current-password" required>'
        '<button type="submit">Autoriser</button></form>'
    )
    resp = _page(401 if error else 200, "Autoriser l’application", body)
    resp.set_cookie(
        CSRF_COOKIE, csrf, httponly=True, samesite="Strict", path="/oauth/",
        secure=request.app[CTX].settings.scheme == "https", max_age=FORM_TTL,
    )
    return resp


async def authorize_form(request: web.Request) -> web.Response:
    ar = await _auth_request(request, dict(request.query))
    if isinstance(ar, web.Response):
        return ar
    csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
    return _consent_page(request, ar, csrf)


async def authorize_submit(request: web.Request) -> web.Response:
    p = await params(request)
    ar = await _auth_request(request, p)
    if isinstance(ar, web.Response):
        return ar
    csrf = request.cookies.get(CSRF_COOKIE)
    if not _check_form_token(csrf, ar.fields(), _str(p, "form_token")):
        return _page(403, "Formulaire expiré",
                     "<p>Le formulaire a expiré ou ne vient pas de ce site. Recommencez "
                     "depuis l’application.</p>")
    assert csrf is not None
    user = await _check_user(request, _str(p, "username"), _str(p, "password"))
    if user is None:
        bad = "Nom d’utilisateur ou mot de passe incorrect."
        return _consent_page(request, ar, csrf, error=bad)
    code = new_secret()
    ctx = request.app[CTX]
    async with ctx.sessions() as s, s.begin():
        s.add(OAuthCode(
            code_hash=digest(code), app_id=ar.app.id, user_id=user.id,
            redirect_uri=ar.redirect_uri, scopes=" ".join(ar.scopes),
            code_challenge=ar.challenge or None, expires_at=datetime.now(UTC) + CODE_TTL,
        ))
    if ar.redirect_uri == OOB:
        return _page(200, "Code d’autorisation",
                     "<p>Copiez ce code dans l’application :</p>"
                     f'<p><code id="code">{html.escape(code)}</code></p>')
    query = {"code": code} | ({"state": ar.state} if ar.state else {})
    sep = "&" if urlsplit(ar.redirect_uri).query else "?"
    # The Location is the registered URI verbatim (HTTPFound would normalise it with yarl,
    # adding a "/" to custom-scheme URIs that apps then fail to match).
    location = ar.redirect_uri + sep + urlencode(query)
    return web.Response(status=302, headers={"Location": location, "Cache-Control": "no-store"})


async def _check_user(request: web.Request, username: str, password: str) -> User | None:
    ctx = request.app[CTX]
    name = username.strip().lstrip("@").split("@")[0].lower()
    async with ctx.sessions() as s:
        user = (await s.execute(
            select(User).join(Actor, Actor.id == User.actor_id)
            .where(User.username == name, Actor.deleted_at.is_(None))
        )).scalar()
    # Unknown names cost one scrypt too, so timing does not tell which names exist.
    stored = user.password_hash if user is not None else _dummy_hash()
    ok = await asyncio.to_thread(check_password, password, stored)
    return user if ok and user is not None and password else None


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


# ---- token / revoke ------------------------------------------------------------------------

async def _client(request: web.Request, p: dict[str, Any]) -> OAuthApp | None:
    client_id, secret = _str(p, "client_id"), _str(p, "client_secret")
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("basic "):
        try:
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
    ctx = request.app[CTX]
    async with ctx.sessions() as s:
        app = (await s.execute(select(OAuthApp).where(OAuthApp.client_id == client_id))).scalar()
    if app is None or not hmac.compare_digest(app.client_secret_hash, digest(secret)):
        return None
    return app


def _pkce_ok(challenge: str | None, verifier: str) -> bool:
    if challenge is None:
        return True
    if not 43 <= len(verifier) <= 128:
        return False
    got = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return hmac.compare_digest(got.decode(), challenge)


async def token(request: web.Request) -> web.Response:
    p = await params(request)
    grant = _str(p, "grant_type")
    app = await _client(request, p)
    if app is None:
        return _oauth_error(401, "invalid_client", "Client authentication failed.")
    ctx = request.app[CTX]
    user_id: int | None = None
    if grant == "authorization_code":
        now = datetime.now(UTC)
        async with ctx.sessions() as s, s.begin():
            code = (await s.execute(
                select(OAuthCode).where(OAuthCode.code_hash == digest(_str(p, "code")))
            )).scalar()
            if code is not None:  # single use, whatever happens next; of two concurrent
                # exchanges only the one whose DELETE removed the row gets a token.
                gone = await s.execute(delete(OAuthCode).where(OAuthCode.id == code.id))
                if cast(CursorResult[Any], gone).rowcount != 1:
                    code = None
        if (code is None or code.app_id != app.id or code.expires_at < now
                or code.redirect_uri != _str(p, "redirect_uri")):
            return _oauth_error(400, "invalid_grant", "The authorization code is invalid.")
        if not _pkce_ok(code.code_challenge, _str(p, "code_verifier")):
            return _oauth_error(400, "invalid_grant", "The PKCE code verifier is invalid.")
        scopes = tuple(code.scopes.split())
        user_id = code.user_id
    else:
        try:
            scopes = sc.parse(_str(p, "scope") or _str(p, "scopes") or app.scopes)
        except sc.ScopeError as e:
            return _oauth_error(400, "invalid_scope", str(e))
        if not sc.subset(scopes, tuple(app.scopes.split())):
            return _oauth_error(400, "invalid_scope", "The requested scope is not allowed.")
        if grant == "password":
            if not ctx.settings.oauth_password_grant:
                return _oauth_error(
                    400, "unsupported_grant_type",
                    "The password grant is disabled on this instance; use the authorization "
                    "code flow.",
                )
            user = await _check_user(request, _str(p, "username"), _str(p, "password"))
            if user is None:
                return _oauth_error(400, "invalid_grant", "Invalid username or password.")
            user_id = user.id
        elif grant != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type", f"Unsupported grant {grant!r}.")
    raw = new_secret()
    async with ctx.sessions() as s, s.begin():
        tok = OAuthToken(token_hash=digest(raw), app_id=app.id, user_id=user_id,
                         scopes=" ".join(scopes))
        s.add(tok)
        await s.flush()
        created = int(tok.created_at.timestamp())
    resp = json_response({
        "access_token": raw, "token_type": "Bearer", "scope": " ".join(scopes),
        "created_at": created,
    })
    resp.headers["Cache-Control"] = "no-store"
    return resp


async def revoke(request: web.Request) -> web.Response:
    p = await params(request)
    app = await _client(request, p)
    if app is None:
        return _oauth_error(403, "unauthorized_client",
                            "You are not authorized to revoke this token")
    ctx = request.app[CTX]
    async with ctx.sessions() as s, s.begin():
        await s.execute(
            update(OAuthToken)
            .where(OAuthToken.token_hash == digest(_str(p, "token")),
                   OAuthToken.app_id == app.id, OAuthToken.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
    return json_response({})  # RFC 7009: 200 even for unknown tokens


async def metadata(request: web.Request) -> web.Response:
    base = request.app[CTX].settings.base_url
    return json_response({
        "issuer": base + "/",
        "service_documentation": "https://docs.joinmastodon.org/",
        "authorization_endpoint": base + "/oauth/authorize",
        "token_endpoint": base + "/oauth/token",
        "revocation_endpoint": base + "/oauth/revoke",
        "app_registration_endpoint": base + "/api/v1/apps",
        "scopes_supported": sorted(sc.KNOWN),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "client_credentials"]
        + (["password"] if request.app[CTX].settings.oauth_password_grant else []),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
    })


def routes(router: web.UrlDispatcher) -> None:
    router.add_post("/api/v1/apps", create_app)
    router.add_post("/api/v1/apps/", create_app)
    for path in ("/oauth/authorize", "/oauth/authorize/"):
        router.add_get(path, authorize_form)
        router.add_post(path, authorize_submit)
    router.add_post("/oauth/token", token)
    router.add_post("/oauth/revoke", revoke)
    router.add_get("/.well-known/oauth-authorization-server", metadata)
