"""GET /api/v1/preferences and GET /api/v1/custom_emojis.

Preferences are not configurable yet: every member posts publicly by default, in French
(the interface speaks French first), and reads with media and spoilers as Mastodon's
defaults. The instance has no custom emojis: the list is really empty.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from t3r1_fed.api.routing import get
from t3r1_fed.httputil import json_response
from t3r1_fed.oauth.auth import require_scope

PREFERENCES: Final[dict[str, Any]] = {
    "posting:default:visibility": "public",
    "posting:default:sensitive": False,
    "posting:default:language": "fr",
    "reading:expand:media": "default",
    "reading:expand:spoilers": False,
}


async def preferences(request: web.Request) -> web.Response:
    await require_scope(request, "read:accounts")
    return json_response(PREFERENCES)


async def custom_emojis(request: web.Request) -> web.Response:
    resp = json_response([])
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp


def routes(router: web.UrlDispatcher) -> None:
    get(router, "/api/v1/preferences", preferences)
    get(router, "/api/v1/custom_emojis", custom_emojis)
