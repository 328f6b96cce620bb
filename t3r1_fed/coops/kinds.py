"""What an object is inside a cooperative, and per-type hooks run when one is stored.

Every content type takes the same road (coops/posting.py for local posts, the inbox's
Create handler for remote ones) and lands in `objects`; a feature module that keeps extra
rows for its type (events, polls, resources …) registers an ingest hook here, which runs
after the object is stored or updated from a remote document.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.db.models import Object

KINDS: Final = ("post", "thread", "reply", "faq", "resource", "document", "event", "poll")

IngestHook = Callable[[Context, AsyncSession, Object, Mapping[str, Any]], Awaitable[None]]
_INGEST: dict[str, list[IngestHook]] = {}


def on_ingest(*types: str) -> Callable[[IngestHook], IngestHook]:
    """Register `fn` to run when a remote object of one of `types` is stored or updated."""

    def register(fn: IngestHook) -> IngestHook:
        for t in types:
            _INGEST.setdefault(t, []).append(fn)
        return fn

    return register


async def run_ingest(
    ctx: Context, session: AsyncSession, row: Object, raw: Mapping[str, Any]
) -> None:
    for hook in _INGEST.get(row.type, ()):
        await hook(ctx, session, row, raw)


def kind_of(raw: Mapping[str, Any]) -> str:
    """The kind of a remote object, from its type and shape."""
    t = raw.get("type")
    if isinstance(t, list):
        t = next((x for x in t if isinstance(x, str)), None)
    if raw.get("inReplyTo"):
        return "reply"
    return {
        "Page": "thread",
        "Event": "event",
        "Question": "poll",
        "Document": "resource",
        "Image": "resource",
        "Audio": "resource",
        "Video": "resource",
    }.get(str(t), "post")
