"""Mastodon filters v2: `/api/v2/filters`, their keywords, and (routes only) the v1 views in
api/filters_v1.py. Rules and validation: api/filter_rules.py; matching statuses for the
status renderer: `active_filters` and `filter_results` (api/filter_match.py).

`keywords_attributes[]` is Rails' nested attributes: an entry with `id` updates that
keyword of this filter (404 if it is not one), with `_destroy` true deletes it, without
`id` adds a keyword; an entry whose values are all blank is ignored. Form bodies use
`keywords_attributes[][keyword]=…` or `keywords_attributes[0][keyword]=…`; JSON bodies a
list of objects. A request is applied entirely or not at all.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.api import entities, filters_v1
from t3r1_fed.api import filter_rules as rules
from t3r1_fed.api.filter_match import (
    CompiledFilter,
    active_filters,
    filter_results,
    searchable_text,
)
from t3r1_fed.api.railsparams import as_bool, as_list, as_str, read_params
from t3r1_fed.api.routing import add, get
from t3r1_fed.appkeys import CTX
from t3r1_fed.db.models_api import Filter, FilterKeyword
from t3r1_fed.httputil import json_response
from t3r1_fed.oauth.auth import json_exc, require_scope

__all__ = ["CompiledFilter", "active_filters", "filter_results", "routes", "searchable_text"]


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


async def _apply_keywords(session: AsyncSession, flt: Filter, raw: Any) -> None:
    entries = as_list(raw, field="keywords_attributes")
    existing = {k.id: k for k in (await rules.keywords_of(session, [flt.id]))[flt.id]}
    for entry in entries:
        if not isinstance(entry, dict):
            raise json_exc(web.HTTPBadRequest, "keywords_attributes must be a list of hashes")
        if all(_blank(v) for k, v in entry.items() if k != "_destroy"):
            continue
        destroy = as_bool(entry.get("_destroy"), field="_destroy") or False
        kid = as_str(entry.get("id"), field="id")
        if kid not in (None, ""):
            try:
                kw = existing[int(kid)]
            except (ValueError, KeyError):
                raise rules.not_found() from None
            if destroy:
                await session.delete(kw)
            else:
                rules.assign_keyword(kw, entry)
        elif not destroy:
            session.add(rules.new_keyword(flt.id, entry))
    await session.flush()


async def _entity(session: AsyncSession, flt: Filter) -> dict[str, Any]:
    return entities.filter_v2(flt, (await rules.keywords_of(session, [flt.id]))[flt.id])


async def index(request: web.Request) -> web.Response:
    info = await require_scope(request, rules.READ)
    async with request.app[CTX].sessions() as s:
        flts = (await s.execute(
            select(Filter).where(Filter.user_id == info.user_id).order_by(Filter.id)
        )).scalars().all()
        kws = await rules.keywords_of(s, [f.id for f in flts])
        return json_response([entities.filter_v2(f, kws[f.id]) for f in flts])


async def show(request: web.Request) -> web.Response:
    info = await require_scope(request, rules.READ)
    assert info.user_id is not None
    async with request.app[CTX].sessions() as s:
        flt = await rules.owned_filter(s, info.user_id, rules.path_id(request))
        return json_response(await _entity(s, flt))


async def create(request: web.Request) -> web.Response:
    info = await require_scope(request, rules.WRITE)
    assert info.user_id is not None
    p = await read_params(request)
    async with request.app[CTX].sessions() as s, s.begin():
        flt = Filter(user_id=info.user_id)
        rules.assign_filter(flt, p, creating=True)
        s.add(flt)
        await s.flush()
        await _apply_keywords(s, flt, p.get("keywords_attributes"))
        doc = await _entity(s, flt)
    return json_response(doc)


async def update(request: web.Request) -> web.Response:
    info = await require_scope(request, rules.WRITE)
    assert info.user_id is not None
    p = await read_params(request)
    async with request.app[CTX].sessions() as s, s.begin():
        flt = await rules.owned_filter(s, info.user_id, rules.path_id(request))
        rules.assign_filter(flt, p, creating=False)
        await _apply_keywords(s, flt, p.get("keywords_attributes"))
        doc = await _entity(s, flt)
    return json_response(doc)


async def destroy(request: web.Request) -> web.Response:
    info = await require_scope(request, rules.WRITE)
    assert info.user_id is not None
    async with request.app[CTX].sessions() as s, s.begin():
        flt = await rules.owned_filter(s, info.user_id, rules.path_id(request))
        await s.execute(delete(FilterKeyword).where(FilterKeyword.filter_id == flt.id))
        await s.delete(flt)
    return json_response({})


async def keywords_index(request: web.Request) -> web.Response:
    info = await require_scope(request, rules.READ)
    assert info.user_id is not None
    async with request.app[CTX].sessions() as s:
        flt = await rules.owned_filter(s, info.user_id, rules.path_id(request))
        kws = (await rules.keywords_of(s, [flt.id]))[flt.id]
        return json_response([entities.filter_keyword(k) for k in kws])


async def keywords_create(request: web.Request) -> web.Response:
    info = await require_scope(request, rules.WRITE)
    assert info.user_id is not None
    p = await read_params(request)
    async with request.app[CTX].sessions() as s, s.begin():
        flt = await rules.owned_filter(s, info.user_id, rules.path_id(request))
        kw = rules.new_keyword(flt.id, p)
        s.add(kw)
        await s.flush()
        doc = entities.filter_keyword(kw)
    return json_response(doc)


async def keyword_show(request: web.Request) -> web.Response:
    info = await require_scope(request, rules.READ)
    assert info.user_id is not None
    async with request.app[CTX].sessions() as s:
        kw, _ = await rules.owned_keyword(s, info.user_id, rules.path_id(request))
        return json_response(entities.filter_keyword(kw))


async def keyword_update(request: web.Request) -> web.Response:
    info = await require_scope(request, rules.WRITE)
    assert info.user_id is not None
    p = await read_params(request)
    async with request.app[CTX].sessions() as s, s.begin():
        kw, _ = await rules.owned_keyword(s, info.user_id, rules.path_id(request))
        rules.assign_keyword(kw, p)
        await s.flush()
        doc = entities.filter_keyword(kw)
    return json_response(doc)


# Deleting one keyword is deleting a v1 filter.
keyword_destroy = filters_v1.destroy


def routes(router: web.UrlDispatcher) -> None:
    base = "/api/v2/filters"
    # Mastodon's path for one keyword is /api/v2/filters/keywords/:id; registered before
    # /api/v2/filters/{id} routes so that "keywords" is never taken for a filter id.
    for kpath in (base + "/keywords/{id}", "/api/v2/filter_keywords/{id}"):
        get(router, kpath, keyword_show)
        add(router, "PUT", kpath, keyword_update)
        add(router, "DELETE", kpath, keyword_destroy)
    get(router, base, index)
    add(router, "POST", base, create)
    get(router, base + "/{id}", show)
    add(router, "PUT", base + "/{id}", update)
    add(router, "DELETE", base + "/{id}", destroy)
    get(router, base + "/{id}/keywords", keywords_index)
    add(router, "POST", base + "/{id}/keywords", keywords_create)
    filters_v1.routes(router)
