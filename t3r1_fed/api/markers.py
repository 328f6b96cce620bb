"""Reading positions: GET/POST /api/v1/markers (timelines `home` and `notifications`).

As Mastodon: GET returns the markers asked for by `timeline[]` that exist, keyed by
timeline; POST takes `home[last_read_id]` and/or `notifications[last_read_id]` (form or
JSON) and returns the markers it saved. `version` starts at 1 and goes up by one with each
change of `last_read_id` (posting the same id changes nothing); two clients saving the
same marker at once: one wins, the other gets 409 and may retry.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.api import entities
from t3r1_fed.api.railsparams import as_list, as_str, read_params
from t3r1_fed.api.routing import add, get
from t3r1_fed.appkeys import CTX
from t3r1_fed.db.models_api import Marker
from t3r1_fed.httputil import json_response
from t3r1_fed.oauth.auth import json_exc, require_scope

TIMELINES: Final = ("home", "notifications")
_ID = re.compile(r"\d{1,20}")
CONFLICT = "Conflict during update, please try again"


async def index(request: web.Request) -> web.Response:
    info = await require_scope(request, "read:statuses")
    p = await read_params(request)
    wanted = [t for t in as_list(p.get("timeline"), field="timeline") if t in TIMELINES]
    ctx = request.app[CTX]
    async with ctx.sessions() as s:
        rows = (await s.execute(
            select(Marker).where(Marker.user_id == info.user_id, Marker.timeline.in_(wanted))
        )).scalars().all() if wanted else []
        return json_response({m.timeline: entities.marker(m) for m in rows})


def _last_read_ids(p: dict[str, Any]) -> dict[str, str]:
    """{timeline: last_read_id} for the timelines given; 422 for a blank or bad id."""
    out: dict[str, str] = {}
    for timeline in TIMELINES:
        value = p.get(timeline)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise json_exc(web.HTTPBadRequest, f"{timeline} must be a hash")
        last = (as_str(value.get("last_read_id"), field="last_read_id") or "").strip()
        if not last:
            raise json_exc(web.HTTPUnprocessableEntity,
                           "Validation failed: Last read can't be blank")
        if not _ID.fullmatch(last):
            raise json_exc(web.HTTPUnprocessableEntity,
                           "Validation failed: Last read is not a valid id")
        out[timeline] = last
    return out


async def _save(session: AsyncSession, user_id: int, timeline: str, last: str) -> Marker:
    """Create or move one marker, optimistically: 409 if another request changed it first."""
    current = (await session.execute(
        select(Marker).where(Marker.user_id == user_id, Marker.timeline == timeline)
    )).scalar()
    if current is None:
        marker = Marker(user_id=user_id, timeline=timeline, last_read_id=last, version=1,
                        updated_at=datetime.now(UTC))
        session.add(marker)
        await session.flush()  # a concurrent insert fails here: IntegrityError → 409
        return marker
    if current.last_read_id == last:
        return current
    version = current.version
    done = await session.execute(
        update(Marker)
        .where(Marker.user_id == user_id, Marker.timeline == timeline, Marker.version == version)
        .values(last_read_id=last, version=version + 1, updated_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    if getattr(done, "rowcount", 0) != 1:
        raise json_exc(web.HTTPConflict, CONFLICT)
    await session.refresh(current)
    return current


async def create(request: web.Request) -> web.Response:
    info = await require_scope(request, "write:statuses")
    assert info.user_id is not None
    ids = _last_read_ids(await read_params(request))
    ctx = request.app[CTX]
    try:
        async with ctx.sessions() as s, s.begin():
            saved = {t: await _save(s, info.user_id, t, last) for t, last in ids.items()}
            doc = {t: entities.marker(m) for t, m in saved.items()}
    except IntegrityError:
        raise json_exc(web.HTTPConflict, CONFLICT) from None
    return json_response(doc)


def routes(router: web.UrlDispatcher) -> None:
    get(router, "/api/v1/markers", index)
    add(router, "POST", "/api/v1/markers", create)
