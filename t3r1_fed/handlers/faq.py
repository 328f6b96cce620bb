"""GET /c/{name}/faq: a cooperative's FAQ as a paged OrderedCollection, in FAQ order.

Items are the entries themselves (the `Article`s, embedded as Mastodon embeds its featured
posts), so a reader gets questions and answers without one fetch per entry; receivers
still take each object from its origin. Pages are numbered (`?page=1`, `?page=2` …)
rather than keyset-paged: the order is the moderators' `position`, not the row id.
Private cooperatives answer only signed requests allowed by `can_read`; others get 404.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from sqlalchemy import func, select

from t3r1_fed.appkeys import CTX
from t3r1_fed.coops.access import can_read
from t3r1_fed.coops.faq import entries_query, faq_url
from t3r1_fed.db.models import Actor, Coop, Object
from t3r1_fed.federation.verifier import signed_requester
from t3r1_fed.httputil import as2_response, json_error
from t3r1_fed.vocab.context import AS_CONTEXT

PAGE_SIZE = 20


def _item(raw: str) -> Any:
    doc = orjson.loads(raw)
    return {k: v for k, v in doc.items() if k != "@context"} if isinstance(doc, dict) else doc


async def faq_collection(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    page_arg = request.query.get("page", "")
    async with ctx.sessions() as session:
        row = (
            await session.execute(
                select(Actor, Coop)
                .join(Coop, Coop.actor_id == Actor.id)
                .where(Coop.name == request.match_info["name"], Actor.deleted_at.is_(None))
            )
        ).first()
        if row is None:
            return json_error(404, "no such cooperative")
        group, coop = row[0], row[1]
        if coop.private and not await can_read(
            session, group, coop, await signed_requester(ctx, request)
        ):
            return json_error(404, "no such cooperative")
        uri = faq_url(group)
        entries = entries_query(group.id)
        total = (
            await session.execute(select(func.count()).select_from(entries.subquery()))
        ).scalar_one()
        if not page_arg.isdigit() or int(page_arg) < 1:
            doc: dict[str, Any] = {
                "@context": AS_CONTEXT,
                "id": uri,
                "type": "OrderedCollection",
                "attributedTo": group.uri,
                "totalItems": total,
                "first": f"{uri}?page=1",
            }
            return as2_response(doc)
        page = int(page_arg)
        rows = list(
            (
                await session.execute(
                    entries.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
                )
            ).scalars()
        )
    doc = {
        "@context": AS_CONTEXT,
        "id": f"{uri}?page={page}",
        "type": "OrderedCollectionPage",
        "partOf": uri,
        "startIndex": (page - 1) * PAGE_SIZE,
        "orderedItems": [_item(r.raw) for r in rows if isinstance(r, Object)],
    }
    if page * PAGE_SIZE < total:
        doc["next"] = f"{uri}?page={page + 1}"
    if page > 1:
        doc["prev"] = f"{uri}?page={page - 1}"
    return as2_response(doc)


def routes(router: web.UrlDispatcher) -> None:
    router.add_get("/c/{name}/faq", faq_collection)
