"""Keyword filters applied to statuses, as Mastodon does (`CustomFilter.apply_cached_filters`).

A keyword becomes a case-insensitive regex; `whole_word` adds a word boundary at either end
whose character is a word character (`#grève` gets none at the start). All keywords of a
filter are joined into one alternation; the first (leftmost) match is the filter's
`keyword_matches`, as in Mastodon. Letters with accents are word characters (Ruby's
`[[:word:]]`, Python's Unicode `\\w`): "cis" does not match "précis"; no accent folding
("ecole" does not match "école"), but case folding is Unicode ("ÉCOLE" matches "école").
Text and keywords are compared in NFC, so a decomposed "école" still matches.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.api.entities import filter_v2
from t3r1_fed.db.models_api import Filter, FilterKeyword
from t3r1_fed.vocab.sanitize import plain_text

_WORD = re.compile(r"\w")


def keyword_regex(keyword: str, whole_word: bool) -> str:
    """The pattern for one keyword (without flags)."""
    kw = unicodedata.normalize("NFC", keyword)
    escaped = re.escape(kw)
    if not whole_word or not kw:
        return escaped
    start = r"\b" if _WORD.match(kw[0]) else ""
    end = r"\b" if _WORD.match(kw[-1]) else ""
    return f"{start}{escaped}{end}"


@dataclass(frozen=True)
class CompiledFilter:
    """An active filter with its keywords compiled; `entity` is its Mastodon Filter entity
    (without keywords, as in a FilterResult)."""

    filter_id: int
    action: str
    contexts: tuple[str, ...]
    pattern: re.Pattern[str] | None
    entity: dict[str, Any]


def compile_filter(flt: Filter, keywords: Sequence[FilterKeyword]) -> CompiledFilter:
    parts = [keyword_regex(k.keyword, k.whole_word) for k in keywords if k.keyword]
    pattern = re.compile("|".join(f"(?:{p})" for p in parts), re.IGNORECASE | re.DOTALL) \
        if parts else None
    return CompiledFilter(
        filter_id=flt.id, action=flt.action, contexts=tuple(flt.contexts.split()),
        pattern=pattern, entity=filter_v2(flt, None),
    )


async def active_filters(session: AsyncSession, user_id: int, context: str) -> list[CompiledFilter]:
    """The user's unexpired filters that apply in `context` (home, notifications, public,
    thread, account), compiled for `filter_results`."""
    now = datetime.now(UTC)
    flts = (await session.execute(
        select(Filter)
        .where(Filter.user_id == user_id, or_(Filter.expires_at.is_(None), Filter.expires_at > now))
        .order_by(Filter.id)
    )).scalars().all()
    flts = [f for f in flts if context in f.contexts.split()]
    if not flts:
        return []
    kws = (await session.execute(
        select(FilterKeyword).where(FilterKeyword.filter_id.in_([f.id for f in flts]))
        .order_by(FilterKeyword.id)
    )).scalars().all()
    by_filter: dict[int, list[FilterKeyword]] = {}
    for k in kws:
        by_filter.setdefault(k.filter_id, []).append(k)
    return [compile_filter(f, by_filter.get(f.id, [])) for f in flts]


def searchable_text(
    spoiler_text: str | None, content_html: str | None,
    poll_options: Sequence[str] = (), media_descriptions: Sequence[str | None] = (),
) -> str:
    """What Mastodon matches keywords against (`Status#searchable_text`): the content
    warning, the text of the content, the poll options and the media descriptions."""
    parts = [spoiler_text or "", plain_text(content_html or ""), *poll_options,
             *(d for d in media_descriptions if d)]
    return "\n\n".join(p for p in parts if p)


def filter_results(filters: Sequence[CompiledFilter], status_text: str) -> list[dict[str, Any]]:
    """Mastodon FilterResult entities for a status whose searchable text (spoiler text,
    plain text, poll options, media descriptions, joined by blank lines) is `status_text`."""
    text = unicodedata.normalize("NFC", status_text)
    out: list[dict[str, Any]] = []
    for flt in filters:
        if flt.pattern is None:
            continue
        m = flt.pattern.search(text)
        if m is None:
            continue
        out.append({"filter": flt.entity, "keyword_matches": [m.group(0)], "status_matches": None})
    return out
