"""Small HTTP helpers shared by every handler: JSON errors and AS2 responses."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

AS2 = "application/activity+json"


def json_error(status: int, message: str, **headers: str) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps({"error": message}),
        content_type="application/json",
        headers=headers or None,
    )


def as2_response(
    doc: dict[str, Any], *, status: int = 200, cache: str | None = None
) -> web.Response:
    resp = web.Response(status=status, body=orjson.dumps(doc), content_type=AS2)
    resp.headers["Vary"] = "Accept, Signature"
    if cache:
        resp.headers["Cache-Control"] = cache
    return resp


def json_response(
    doc: Any, *, content_type: str = "application/json", status: int = 200
) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(doc), content_type=content_type)


def wants_as2(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "activity+json" in accept or "ld+json" in accept


async def read_limited(request: web.Request, limit: int) -> bytes | None:
    """The request body, or None when it is larger than `limit` (declared or actual)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
