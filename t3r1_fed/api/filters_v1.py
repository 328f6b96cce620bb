"""Mastodon filters v1 (`/api/v1/filters`): each v1 filter is one keyword of a v2 filter,
as in Mastodon 4: its id is the keyword's, `phrase` the keyword, `irreversible` the
filter's action being `hide`. Creating one creates a v2 filter titled by the phrase with
that single keyword. Updating changes the keyword, and the filter's title, context,
expiry and action, which is refused (422) when the filter has other keywords. Deleting one
deletes the keyword only.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import func, select

from t3r1_fed.api import entities
from t3r1_fed.api import filter_rules as rules
from t3r1_fed.api.railsparams import read_params
from t3r1_fed.api.routing import add, get
from t3r1_fed.appkeys import CTX
from t3r1_fed.db.models_api import Filter, FilterKeyword
from t3r1_fed.httputil import json_response
from t3r1_fed.oauth.auth import json_exc, require_scope

MULTIPLE = ("These parameters cannot be changed from this application because they apply "
            "to more than one filter keyword. Use a more recent application or the web "
            "interface.")


async def index(request: web.Request) -> web.Response:
    info = await require_scope(request, rules.READ)
    async with request.app[CTX].sessions() as s:
        rows = (await s.execute(
            select(FilterKeyword, Filter).join(Filter, Filter.id == FilterKeyword.filter_id)
            .where(Filter.user_id == info.user_id).order_by(FilterKeyword.id)
        )).all()
        return json_response([entities.filter_v1(k, f) for k, f in rows])


async def show(request: web.Request) -> web.Response:
    info = await require_scope(request, rules.READ)
    assert info.user_id is not None
    async with request.app[CTX].sessions() as s:
        kw, flt = await rules.owned_keyword(s, info.user_id, rules.path_id(request))
        return json_response(entities.filter_v1(kw, flt))


async def create(request: web.Request) -> web.Response:
    info = await require_scope(request, rules.WRITE)
    assert info.user_id is not None
    p = await read_params(request)
    async with request.app[CTX].sessions() as s, s.begin():
        flt = Filter(user_id=info.user_id)
        rules.assign_filter(flt, p, creating=True, title_key="phrase", action_key="irreversible")
        s.add(flt)
        await s.flush()
        kw = rules.new_keyword(flt.id, p, key="phrase")
        s.add(kw)
        await s.flush()
        doc = entities.filter_v1(kw, flt)
    return json_response(doc)


async def update(request: web.Request) -> web.Response:
    info = await require_scope(request, rules.WRITE)
    assert info.user_id is not None
    p = await read_params(request)
    async with request.app[CTX].sessions() as s, s.begin():
        kw, flt = await rules.owned_keyword(s, info.user_id, rules.path_id(request))
        rules.assign_keyword(kw, p, key="phrase")
        before = (flt.title, flt.contexts, flt.action, flt.expires_at)
        rules.assign_filter(flt, p, creating=False, title_key="phrase", action_key="irreversible")
        if (flt.title, flt.contexts, flt.action, flt.expires_at) != before:
            count = (await s.execute(
                select(func.count()).select_from(FilterKeyword)
                .where(FilterKeyword.filter_id == flt.id)
            )).scalar_one()
            if count > 1:
                raise json_exc(web.HTTPUnprocessableEntity, MULTIPLE)
        await s.flush()
        doc = entities.filter_v1(kw, flt)
    return json_response(doc)


async def destroy(request: web.Request) -> web.Response:
    """A v1 filter is one keyword of a v2 filter: deleting it deletes that keyword (also
    DELETE /api/v2/filters/keywords/:id)."""
    info = await require_scope(request, rules.WRITE)
    assert info.user_id is not None
    async with request.app[CTX].sessions() as s, s.begin():
        kw, _ = await rules.owned_keyword(s, info.user_id, rules.path_id(request))
        await s.delete(kw)
    return json_response({})


def routes(router: web.UrlDispatcher) -> None:
    base = "/api/v1/filters"
    get(router, base, index)
    add(router, "POST", base, create)
    get(router, base + "/{id}", show)
    add(router, "PUT", base + "/{id}", update)
    add(router, "DELETE", base + "/{id}", destroy)
