"""HTTP for a cooperative's files: the `resources` collection and its folders.

- `GET /c/{name}/resources`: paged OrderedCollection of every resource (Document/Image
  objects, embedded), newest first; `?folder=<folder id URL>` restricts it to one folder.
- `GET /c/{name}/resources/{fid}`: a folder, served as Mobilizon's `ResourceCollection`
  (`name`, `attributedTo` the group, `context` the parent folder or the `resources`
  collection) with `totalItems` and a `first` page of the resources it holds.
Private cooperatives: only signed requests that `can_read` accepts; others get 404.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.documents import register_group_collection
from t3r1_fed.appkeys import CTX
from t3r1_fed.coops.access import readable_coop
from t3r1_fed.coops.resources import resources_url
from t3r1_fed.db.models import Actor, Object
from t3r1_fed.db.models_coops import Resource, ResourceFolder
from t3r1_fed.handlers.activitypub import _paged
from t3r1_fed.httputil import as2_response, json_error
from t3r1_fed.vocab.context import AS_CONTEXT

register_group_collection("resources")


def _embedded(raw: str) -> dict[str, Any]:
    return {k: v for k, v in orjson.loads(raw).items() if k != "@context"}


async def _listing(
    request: web.Request,
    session: AsyncSession,
    group: Actor,
    coll_uri: str,
    folder: ResourceFolder | None,
) -> web.Response:
    where = [
        Resource.coop_actor_id == group.id,
        Object.deleted_at.is_(None),
        Object.removed_at.is_(None),
    ]
    if folder is not None:
        where.append(Resource.folder_id == folder.id)
    count = (
        select(func.count())
        .select_from(Resource)
        .join(Object, Object.id == Resource.object_id)
        .where(*where)
    )
    items = select(Object.id, Object.raw).join(Resource, Resource.object_id == Object.id)
    return await _paged(
        request, session, coll_uri, count, items.where(*where), Object.id,
        lambda r: _embedded(r[1]),
    )  # fmt: skip


async def _folder_by_uri(session: AsyncSession, group: Actor, uri: str) -> ResourceFolder | None:
    q = select(ResourceFolder).where(
        ResourceFolder.uri == uri, ResourceFolder.coop_actor_id == group.id
    )
    return (await session.execute(q)).scalar()


async def resources_collection(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    async with ctx.sessions() as session:
        found = await readable_coop(request.app[CTX], request, session)
        group = found[0] if found is not None else None
        if group is None:
            return json_error(404, "no such cooperative")
        folder = None
        if "folder" in request.query:
            folder = await _folder_by_uri(session, group, request.query["folder"])
            if folder is None:
                return json_error(404, "no such folder")
            # Filtered listings live at the folder's own URL.
            raise web.HTTPFound(folder.uri + ("?page=true" if "page" in request.query else ""))
        return await _listing(request, session, group, resources_url(group), folder)


async def folder_document(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    async with ctx.sessions() as session:
        found = await readable_coop(request.app[CTX], request, session)
        group = found[0] if found is not None else None
        if group is None:
            return json_error(404, "no such cooperative")
        uri = f"{resources_url(group)}/{request.match_info['fid']}"
        folder = await _folder_by_uri(session, group, uri)
        if folder is None:
            return json_error(404, "no such folder")
        if request.query.get("page") == "true":
            return await _listing(request, session, group, folder.uri, folder)
        parent = await session.get(ResourceFolder, folder.parent_id) if folder.parent_id else None
        total = (
            await session.execute(
                select(func.count())
                .select_from(Resource)
                .join(Object, Object.id == Resource.object_id)
                .where(
                    Resource.folder_id == folder.id,
                    Object.deleted_at.is_(None),
                    Object.removed_at.is_(None),
                )
            )
        ).scalar_one()
    doc = {
        "@context": AS_CONTEXT,
        "id": folder.uri,
        "type": "ResourceCollection",
        "name": folder.name,
        "attributedTo": group.uri,
        "context": parent.uri if parent is not None else resources_url(group),
        "published": folder.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "totalItems": total,
        "first": f"{folder.uri}?page=true",
    }
    return as2_response(doc)


def routes(router: web.UrlDispatcher) -> None:
    router.add_get("/c/{name}/resources", resources_collection)
    router.add_get("/c/{name}/resources/{fid}", folder_document)
