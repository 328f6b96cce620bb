"""Validation and storage shared by the filter endpoints (v1 in api/filters_v1.py, v2 in
api/filters.py), following Mastodon's CustomFilter and CustomFilterKeyword models:
title and context required, contexts among five, `filter_action` warn|hide|blur,
`expires_in` in seconds (blank: never), keywords required non-blank, whole_word by default.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.api.railsparams import as_bool, as_int, as_list, as_str
from t3r1_fed.api.viewer import NOT_FOUND
from t3r1_fed.db.models_api import Filter, FilterKeyword
from t3r1_fed.oauth.auth import json_exc

CONTEXTS: Final = ("home", "notifications", "public", "thread", "account")
ACTIONS: Final = ("warn", "hide", "blur")  # blur: Mastodon 4.4
MAX_TEXT: Final = 255  # title and keyword columns
MAX_EXPIRES_IN: Final = 100 * 365 * 86400
READ, WRITE = "read:filters", "write:filters"


def invalid(message: str) -> web.HTTPException:
    return json_exc(web.HTTPUnprocessableEntity, f"Validation failed: {message}")


def not_found() -> web.HTTPException:
    return json_exc(web.HTTPNotFound, NOT_FOUND)


def path_id(request: web.Request, name: str = "id") -> int:
    try:
        value = int(request.match_info[name])
    except (KeyError, ValueError):
        raise not_found() from None
    if not 0 < value < (1 << 63):
        raise not_found()
    return value


def text(value: Any, *, field: str, label: str) -> str:
    """A required text field, kept as given (a keyword's spaces matter: " art" finds words
    starting with "art"), not blank, at most MAX_TEXT characters."""
    out = as_str(value, field=field) or ""
    if not out.strip():
        raise invalid(f"{label} can't be blank")
    if len(out) > MAX_TEXT:
        raise invalid(f"{label} is too long (maximum is {MAX_TEXT} characters)")
    return out


def contexts(value: Any) -> str:
    """`context[]` → space-separated, order kept, duplicates dropped; 422 if none or bad."""
    items: list[str] = []
    for raw in as_list(value, field="context"):
        item = (as_str(raw, field="context") or "").strip()
        if item and item not in items:
            items.append(item)
    if not items:
        raise invalid("Context can't be blank")
    if any(i not in CONTEXTS for i in items):
        raise invalid("Context None or invalid context supplied")
    return " ".join(items)


def action(value: Any) -> str:
    out = (as_str(value, field="filter_action") or "").strip()
    if out not in ACTIONS:
        raise invalid("Filter action is not included in the list")
    return out


def expires_at(value: Any) -> datetime | None:
    """`expires_in` seconds from now; None for blank or null (never expires)."""
    seconds = as_int(value, field="Expires in")
    if seconds is None:
        return None
    if not 0 < seconds <= MAX_EXPIRES_IN:
        raise invalid("Expires in must be a positive number of seconds")
    return datetime.now(UTC) + timedelta(seconds=seconds)


def assign_filter(flt: Filter, p: dict[str, Any], *, creating: bool, title_key: str = "title",
                  action_key: str = "filter_action") -> None:
    """Assign title, context, action, expiry from `p` (required ones when creating)."""
    if creating or title_key in p:
        flt.title = text(p.get(title_key), field=title_key, label="Title")
    if creating or "context" in p:
        flt.contexts = contexts(p.get("context"))
    if action_key == "irreversible":
        irreversible = as_bool(p.get("irreversible"), field="irreversible")
        if irreversible is not None:
            flt.action = "hide" if irreversible else "warn"
        elif creating:
            flt.action = "warn"
    elif p.get(action_key) not in (None, ""):
        flt.action = action(p.get(action_key))
    elif creating:
        flt.action = "warn"
    if "expires_in" in p:
        flt.expires_at = expires_at(p.get("expires_in"))
    elif creating:
        flt.expires_at = None


def new_keyword(filter_id: int, p: dict[str, Any], *, key: str = "keyword") -> FilterKeyword:
    whole = as_bool(p.get("whole_word"), field="whole_word")
    return FilterKeyword(
        filter_id=filter_id, keyword=text(p.get(key), field=key, label="Keyword"),
        whole_word=True if whole is None else whole,
    )


def assign_keyword(kw: FilterKeyword, p: dict[str, Any], *, key: str = "keyword") -> None:
    if key in p:
        kw.keyword = text(p.get(key), field=key, label="Keyword")
    whole = as_bool(p.get("whole_word"), field="whole_word")
    if whole is not None:
        kw.whole_word = whole


async def owned_filter(session: AsyncSession, user_id: int, filter_id: int) -> Filter:
    flt = (await session.execute(
        select(Filter).where(Filter.id == filter_id, Filter.user_id == user_id)
    )).scalar()
    if flt is None:
        raise not_found()
    return flt


async def owned_keyword(
    session: AsyncSession, user_id: int, keyword_id: int
) -> tuple[FilterKeyword, Filter]:
    row = (await session.execute(
        select(FilterKeyword, Filter).join(Filter, Filter.id == FilterKeyword.filter_id)
        .where(FilterKeyword.id == keyword_id, Filter.user_id == user_id)
    )).first()
    if row is None:
        raise not_found()
    return row[0], row[1]


async def keywords_of(
    session: AsyncSession, filter_ids: Sequence[int]
) -> dict[int, list[FilterKeyword]]:
    out: dict[int, list[FilterKeyword]] = {i: [] for i in filter_ids}
    if not filter_ids:
        return out
    rows = (await session.execute(
        select(FilterKeyword).where(FilterKeyword.filter_id.in_(filter_ids))
        .order_by(FilterKeyword.id)
    )).scalars()
    for kw in rows:
        out[kw.filter_id].append(kw)
    return out
