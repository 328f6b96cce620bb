"""GET /directory.json: the directory (annuaire) as JSON, for the web UI and scripts.

Query parameters: `q` (name), `structure`, `skill`, `tag` (hashtag), `kind` (`member` |
`coop`), `limit` (≤ 200). Only what coops/directory.py lets anyone see: listed members'
opted-in fields, public local cooperatives and known remote groups.
"""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web

from t3r1_fed.appkeys import CTX
from t3r1_fed.coops.directory import DirectoryError, search
from t3r1_fed.httputil import json_error, json_response

MAX_PARAM_CHARS = 200


async def directory(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    params = {k: request.query.get(k, "")[:MAX_PARAM_CHARS].strip()
              for k in ("q", "structure", "skill", "tag", "kind", "limit")}
    limit = int(params["limit"]) if params["limit"].isdigit() else 50
    async with ctx.sessions() as session:
        try:
            found = await search(session, params["q"] or None,
                                 structure=params["structure"] or None,
                                 skill=params["skill"] or None, hashtag=params["tag"] or None,
                                 kind=params["kind"] or None, limit=limit)
        except DirectoryError as e:
            return json_error(400, str(e))
    return json_response({"items": [asdict(e) for e in found]})


def routes(router: web.UrlDispatcher) -> None:
    router.add_get("/directory.json", directory)
