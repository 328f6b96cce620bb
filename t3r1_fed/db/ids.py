"""Status ids: time-sortable 63-bit integers shared by `objects.sid` and `shares.sid`.

The Mastodon client API shows posts and boosts (a cooperative's redistribution included)
in one timeline, paginated by `max_id`/`min_id`, and clients such as Tusky compare ids to
merge pages and find gaps. So the two tables draw ids from one time-ordered space, as
Mastodon's snowflake `timestamp_id`:

    bits 62..21  milliseconds since the Unix epoch (42 bits: until the year 2109)
    bits 20..13  process slot (8 bits), allocated from the database at start
    bits 12..1   sequence within the millisecond (4,096 per process, per kind)
    bit  0       kind: 0 for an object (a status), 1 for a share (a boost)

Ids are unique without coordination per insert: within a process the sequence is
monotonic, and two processes writing to one database hold different slots (`id_slots`),
so 256 processes may run at once before a slot is reused. The kind bit tells which table
an id designates.
"""

from __future__ import annotations

import secrets
import threading
import time
from datetime import UTC, datetime
from typing import Final

OBJECT: Final = 0
SHARE: Final = 1

_SEQ_BITS = 12
_SLOT_BITS = 8
_TIME_SHIFT = 1 + _SEQ_BITS + _SLOT_BITS  # 21
_SEQ_MAX = (1 << _SEQ_BITS) - 1


class SidGenerator:
    def __init__(self, slot: int) -> None:
        self.slot = slot % (1 << _SLOT_BITS)
        self._lock = threading.Lock()
        self._last_ms = 0
        self._seq = [0, 0]

    def set_slot(self, slot: int) -> None:
        with self._lock:
            self.slot = slot % (1 << _SLOT_BITS)

    def next(self, kind: int) -> int:
        with self._lock:
            ms = max(int(time.time() * 1000), self._last_ms)
            if ms != self._last_ms:
                self._last_ms, self._seq = ms, [0, 0]
            elif self._seq[kind] > _SEQ_MAX:  # 4,096 ids in one millisecond: borrow the next
                self._last_ms = ms = ms + 1
                self._seq = [0, 0]
            seq = self._seq[kind]
            self._seq[kind] += 1
        return (ms << _TIME_SHIFT) | (self.slot << (_SEQ_BITS + 1)) | (seq << 1) | kind


# One generator per process; `Context.claim_id_slot` gives it a slot from the database.
GENERATOR = SidGenerator(secrets.randbelow(1 << _SLOT_BITS))


def object_sid() -> int:
    return GENERATOR.next(OBJECT)


def share_sid() -> int:
    return GENERATOR.next(SHARE)


def kind_of(sid: int) -> int:
    return sid & 1


def sid_time(sid: int) -> datetime:
    """When an id was minted (its millisecond), in UTC."""
    return datetime.fromtimestamp(ms_of(sid) / 1000, tz=UTC)


def sid_floor(ms: int) -> int:
    """The smallest id of the millisecond `ms` (for `created_at`-based cursors)."""
    return ms << _TIME_SHIFT


def legacy_sid(ms: int, row_id: int, kind: int) -> int:
    """Ids for rows written before status ids existed (migration 0004): the row's time and
    its primary key (20 bits in the slot and sequence fields), unique per table."""
    return (ms << _TIME_SHIFT) | ((row_id & 0xFFFFF) << 1) | kind


def ms_of(sid: int) -> int:
    return sid >> _TIME_SHIFT
