"""Group keys of notifications (Mastodon 4.3 grouped notifications), computed, not stored.

Mastodon groups `favourite` and `reblog` notifications about one status, and `follow`
notifications, that arrive within a span of hours; other notifications are groups of one,
keyed `ungrouped-<id>`. Mastodon keeps the start of a running group in Redis; we use fixed
12-hour buckets aligned on the epoch, so a key is a pure function of the row and the
notifications of one group can be selected again from the key alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

GROUPABLE: Final = ("favourite", "reblog", "follow")
SPAN_HOURS: Final = 12


def bucket_of(created_at: datetime) -> int:
    hours = int(created_at.timestamp()) // 3600
    return hours - hours % SPAN_HOURS


def group_key(
    nid: int, kind: str, status_id: int | None, created_at: datetime,
    grouped: tuple[str, ...] | frozenset[str] = GROUPABLE,
) -> str:
    """The group key of a notification (`status_id` is the status id, objects.sid)."""
    if kind not in GROUPABLE or kind not in grouped:
        return f"ungrouped-{nid}"
    if kind == "follow":
        return f"follow-{bucket_of(created_at)}"
    if status_id is None:
        return f"ungrouped-{nid}"
    return f"{kind}-{status_id}-{bucket_of(created_at)}"


@dataclass(frozen=True)
class ParsedKey:
    """What a group key selects: one notification, or a type (+ status) in a time span."""

    notification_id: int | None = None
    kind: str | None = None
    status_id: int | None = None
    start: datetime | None = None
    end: datetime | None = None


def parse_group_key(key: str) -> ParsedKey | None:
    parts = key.split("-")
    try:
        if len(parts) == 2 and parts[0] == "ungrouped":
            nid = int(parts[1])
            return ParsedKey(notification_id=nid) if 0 < nid < (1 << 63) else None
        if len(parts) == 2 and parts[0] == "follow":
            return _span(ParsedKey(kind="follow"), int(parts[1]))
        if len(parts) == 3 and parts[0] in ("favourite", "reblog"):
            sid = int(parts[1])
            if not 0 < sid < (1 << 63):
                return None
            return _span(ParsedKey(kind=parts[0], status_id=sid), int(parts[2]))
    except (ValueError, OverflowError, OSError):
        return None
    return None


def _span(key: ParsedKey, bucket: int) -> ParsedKey | None:
    if bucket < 0 or bucket % SPAN_HOURS or bucket > 100_000_000:
        return None
    start = datetime.fromtimestamp(bucket * 3600, UTC)
    end = datetime.fromtimestamp((bucket + SPAN_HOURS) * 3600, UTC)
    return ParsedKey(kind=key.kind, status_id=key.status_id, start=start, end=end)
