"""Mastodon pagination: `max_id`, `since_id`, `min_id`, `limit`, and the `Link` header.

- `max_id`: strictly older than this id; `since_id`: strictly newer, newest first;
  `min_id`: strictly newer, the page just above it (oldest first in the query, returned
  newest first), which is how clients walk forward without gaps.
- `Link: <…?max_id=LAST>; rel="next", <…?min_id=FIRST>; rel="prev"` over the ids of the
  page as returned (newest first); other query parameters are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDict

from t3r1_fed.oauth.auth import json_exc

MAX_ID = (1 << 63) - 1


@dataclass(frozen=True)
class Page:
    max_id: int | None
    since_id: int | None
    min_id: int | None
    limit: int

    @property
    def ascending(self) -> bool:
        """True when the query should walk upwards from `min_id` (then reverse)."""
        return self.min_id is not None and self.max_id is None and self.since_id is None

    @property
    def lower(self) -> int | None:
        """Ids must be strictly greater than this."""
        if self.min_id is not None and self.since_id is not None:
            return max(self.min_id, self.since_id)
        return self.min_id if self.min_id is not None else self.since_id


def _id(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise json_exc(web.HTTPBadRequest, f"{name} must be an id") from None
    return max(0, min(value, MAX_ID))


def page_params(request: web.Request, *, default: int = 20, maximum: int = 40) -> Page:
    raw = request.query.get("limit", "").strip()
    try:
        limit = int(raw) if raw else default
    except ValueError:
        raise json_exc(web.HTTPBadRequest, "limit must be a number") from None
    return Page(
        max_id=_id(request, "max_id"),
        since_id=_id(request, "since_id"),
        min_id=_id(request, "min_id"),
        limit=max(1, min(limit, maximum)),
    )


def link_header(request: web.Request, ids: Sequence[int | str]) -> str | None:
    """`next`/`prev` links for a page whose items have `ids`, newest first."""
    if not ids:
        return None
    base = str(request.url.with_query(None))
    kept: MultiDict[str] = MultiDict(
        (k, v) for k, v in request.query.items() if k not in {"max_id", "since_id", "min_id"}
    )
    nxt = MultiDict(kept)
    nxt["max_id"] = str(ids[-1])
    prev = MultiDict(kept)
    prev["min_id"] = str(ids[0])
    return f'<{base}?{urlencode(list(nxt.items()))}>; rel="next", ' \
           f'<{base}?{urlencode(list(prev.items()))}>; rel="prev"'


def with_link(request: web.Request, resp: web.Response, ids: Sequence[int | str]) -> web.Response:
    link = link_header(request, ids)
    if link:
        resp.headers["Link"] = link
    return resp
