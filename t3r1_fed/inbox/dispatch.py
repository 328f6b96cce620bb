"""The dispatch table: (activity type, object type) → handler.

Each handler returns a short description of what it did (stored on the inbox item) or raises
`Ignored` with the reason; anything else it raises is a failure to retry later. Unknown
pairs are recorded as ignored, never raised.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.vocab.normalize import Activity


class Ignored(Exception):
    """Nothing to do for this activity; the message says why."""


@dataclass
class Inbound:
    ctx: Context
    session: AsyncSession
    act: Activity
    recipient: str | None  # the local actor whose inbox received it (None: shared inbox)

    @property
    def raw(self) -> dict[str, Any]:
        return self.act.raw


Handler = Callable[[Inbound], Awaitable[str]]

ACTOR_TYPES = frozenset({"Person", "Group", "Service", "Application", "Organization"})
CONTENT_TYPES = frozenset({"Note", "Article", "Page"})
ANY = "*"

TABLE: dict[tuple[str, str], Handler] = {}


def handles(activity: str, *objects: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for obj in objects or (ANY,):
            TABLE[(activity, obj)] = fn
        return fn

    return register


def lookup(act: Activity) -> Handler | None:
    """The handler for `act`: exact object type first, then the activity's wildcard."""
    if act.object_type is not None:
        fn = TABLE.get((act.type, act.object_type))
        if fn is not None:
            return fn
        # An embedded object of a type we don't list: only wildcard handlers that accept
        # any embedded type (registered with ANY) may take it.
    return TABLE.get((act.type, ANY))


async def dispatch(inbound: Inbound) -> tuple[str, str]:
    """Run the handler; returns (state, result) with state 'done' or 'ignored'."""
    fn = lookup(inbound.act)
    if fn is None:
        return "ignored", f"unsupported: {inbound.act.type}/{inbound.act.object_type or '-'}"
    try:
        return "done", await fn(inbound)
    except Ignored as e:
        return "ignored", str(e) or "ignored"
