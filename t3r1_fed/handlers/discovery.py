"""WebFinger, host-meta and NodeInfo (2.0 and 2.1, with the FEP-2677 application actor)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote
from xml.sax.saxutils import escape

from aiohttp import web
from sqlalchemy import func, select

from t3r1_fed import __version__
from t3r1_fed.actors.local import local_actor_by_name
from t3r1_fed.appkeys import CTX
from t3r1_fed.db.models import Actor, Object, User
from t3r1_fed.httputil import json_error, json_response

JRD = "application/jrd+json"
CORS = {"Access-Control-Allow-Origin": "*"}


def _links(uri: str, profile: str | None) -> list[dict[str, Any]]:
    links: list[dict[str, Any]] = [
        {"rel": "self", "type": "application/activity+json", "href": uri},
    ]
    if profile:
        links.insert(
            0,
            {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html", "href": profile},
        )
    return links


async def webfinger(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    resource = request.query.get("resource", "").strip()
    if not resource:
        return json_error(400, "missing resource parameter")
    domain = ctx.settings.domain
    base = ctx.settings.base_url
    if resource in {base, base + "/", f"acct:{domain}@{domain}"}:
        # FEP-d556: the origin (and acct:domain@domain) names the instance actor.
        uri = ctx.uris.instance_actor
        doc = {
            "subject": f"acct:{domain}@{domain}",
            "aliases": [uri, base + "/"],
            "links": _links(uri, base + "/"),
        }
        return _jrd(doc)
    name: str | None = None
    if resource.startswith("acct:"):
        acct = unquote(resource[5:]).lstrip("@")
        user, _, host = acct.rpartition("@")
        if host.lower() == domain and user:
            name = user
    elif ctx.uris.is_local(resource):
        path = ctx.uris.local_path(resource) or ""
        for prefix in ("/u/", "/c/", "/@"):
            if path.startswith(prefix):
                name = unquote(path[len(prefix) :])
    if name is None:
        return json_error(404, "unknown resource", **CORS)
    async with ctx.sessions() as session:
        actor = await local_actor_by_name(session, domain, name)
    if actor is None:
        return json_error(404, "unknown resource", **CORS)
    doc = {
        "subject": f"acct:{actor.username}@{domain}",
        "aliases": [actor.uri, actor.url or actor.uri],
        "links": _links(actor.uri, actor.url),
    }
    return _jrd(doc)


def _jrd(doc: dict[str, Any]) -> web.Response:
    resp = json_response(doc, content_type=JRD)
    resp.headers.update(CORS)
    return resp


async def host_meta(request: web.Request) -> web.Response:
    base = request.app[CTX].settings.base_url
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">\n'
        f'  <Link rel="lrdd" template="{escape(base)}/.well-known/webfinger?resource={{uri}}"/>\n'
        "</XRD>\n"
    )
    return web.Response(text=xml, content_type="application/xrd+xml", headers=CORS)


async def nodeinfo_index(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    base = ctx.settings.base_url
    doc = {
        "links": [
            {
                "rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
                "href": f"{base}/nodeinfo/2.1",
            },
            {
                "rel": "http://nodeinfo.diaspora.software/ns/schema/2.0",
                "href": f"{base}/nodeinfo/2.0",
            },
            # FEP-2677: where to find the application (instance) actor.
            {
                "rel": "https://www.w3.org/ns/activitystreams#Application",
                "href": ctx.uris.instance_actor,
            },
        ]
    }
    resp = json_response(doc)
    resp.headers.update(CORS)
    return resp


async def nodeinfo(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    version = request.match_info["version"]
    if version not in {"2.0", "2.1"}:
        return json_error(404, "unknown nodeinfo version")
    async with ctx.sessions() as session:
        users = (await session.execute(select(func.count()).select_from(User))).scalar_one()
        posts = (
            await session.execute(
                select(func.count())
                .select_from(Object)
                .where(Object.local.is_(True), Object.deleted_at.is_(None))
            )
        ).scalar_one()
        groups = (
            await session.execute(
                select(func.count())
                .select_from(Actor)
                .where(Actor.local.is_(True), Actor.type == "Group")
            )
        ).scalar_one()
    software: dict[str, Any] = {"name": "t3r1-fed", "version": __version__}
    doc = {
        "version": version,
        "software": software,
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": False,
        "usage": {"users": {"total": users}, "localPosts": posts},
        "metadata": {
            "nodeName": ctx.settings.instance_name,
            "nodeDescription": ctx.settings.instance_description,
            "cooperatives": groups,
        },
    }
    profile = f"http://nodeinfo.diaspora.software/ns/schema/{version}#"
    resp = json_response(doc, content_type="application/json")
    resp.headers["Content-Type"] = f'application/json; profile="{profile}"'
    resp.headers.update(CORS)
    return resp
