"""GET /api/v1/apps/verify_credentials: the Application of the request's token.

Any valid token (a user's or a client_credentials one) may ask, whatever its scopes, as
Mastodon; 401 without one. The entity is the one POST /api/v1/apps returns, without the
client secret (oauth/handlers.py builds both).
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from t3r1_fed.api.routing import get
from t3r1_fed.appkeys import CTX
from t3r1_fed.db.models_api import OAuthApp
from t3r1_fed.httputil import json_response
from t3r1_fed.oauth.auth import authenticate, json_exc
from t3r1_fed.oauth.handlers import _app_entity


async def verify_app(request: web.Request) -> web.Response:
    info = await authenticate(request)
    if info is None:
        raise json_exc(web.HTTPUnauthorized, "The access token is invalid")
    async with request.app[CTX].sessions() as s:
        app = (await s.execute(select(OAuthApp).where(OAuthApp.id == info.app_id))).scalar()
    if app is None:  # the app was deleted with its tokens: the token is gone too
        raise json_exc(web.HTTPUnauthorized, "The access token is invalid")
    return json_response(_app_entity(app, None))


def routes(router: web.UrlDispatcher) -> None:
    get(router, "/api/v1/apps/verify_credentials", verify_app)
