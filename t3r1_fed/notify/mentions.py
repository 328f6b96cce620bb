"""`Mention` tags of stored objects → the `mentions` table.

Pure parsing here (`mention_hrefs`); `sync_mentions` runs inside a flush (events.py) on
the synchronous session, with Core statements only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson
from sqlalchemy import Table, delete, select
from sqlalchemy.orm import Session

from t3r1_fed.db.models import Actor, Mention
from t3r1_fed.vocab.shapes import as_list, http_url, types_of

# Mastodon processes at most this many mentions of a status; more is abuse.
MAX_MENTIONS: Final = 100
CHUNK: Final = 500  # IN (…) lists kept well under every backend's parameter limit
MENTIONS: Final[Table] = Mention.__table__  # type: ignore[assignment]


def mention_hrefs(raw: str | Mapping[str, Any] | None) -> list[str]:
    """The `href`s of the `Mention` tags of an object's JSON, deduplicated, in order."""
    doc: Any = raw
    if isinstance(raw, str):
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return []
    if not isinstance(doc, Mapping):
        return []
    out: dict[str, None] = {}
    for tag in as_list(doc.get("tag")):
        if not isinstance(tag, Mapping) or "Mention" not in types_of(tag):
            continue
        href = http_url(tag.get("href"))
        if href is not None:
            out[href] = None
            if len(out) >= MAX_MENTIONS:
                break
    return list(out)


def known_actors(session: Session, uris: set[str]) -> dict[str, int]:
    """Actor ids of the stored (not deleted) actors among `uris`; nothing is fetched."""
    found: dict[str, int] = {}
    ordered = sorted(uris)
    for i in range(0, len(ordered), CHUNK):
        rows = session.execute(
            select(Actor.uri, Actor.id).where(
                Actor.uri.in_(ordered[i : i + CHUNK]), Actor.deleted_at.is_(None)
            )
        )
        found.update({uri: aid for uri, aid in rows})
    return found


def sync_mentions(
    session: Session, hrefs: Mapping[int, list[str]], existing_objects: set[int]
) -> dict[int, set[int]]:
    """Make `mentions` match `hrefs` (object id → Mention hrefs) and return, per object,
    the actor ids mentioned now that were not before. `existing_objects` are the ids of
    objects stored before this flush (their previous rows are compared and pruned)."""
    wanted_uris = {h for hs in hrefs.values() for h in hs}
    actors = known_actors(session, wanted_uris) if wanted_uris else {}
    wanted = {oid: {actors[h] for h in hs if h in actors} for oid, hs in hrefs.items()}
    before: dict[int, set[int]] = {oid: set() for oid in hrefs}
    old = sorted(existing_objects & hrefs.keys())
    for i in range(0, len(old), CHUNK):
        rows = session.execute(
            select(Mention.object_id, Mention.actor_id).where(
                Mention.object_id.in_(old[i : i + CHUNK])
            )
        )
        for oid, aid in rows:
            before[oid].add(aid)
    added: dict[int, set[int]] = {}
    inserts: list[dict[str, int]] = []
    for oid, now in wanted.items():
        new = now - before[oid]
        gone = before[oid] - now
        if new:
            added[oid] = new
            inserts.extend({"object_id": oid, "actor_id": aid} for aid in sorted(new))
        if gone:
            session.execute(
                delete(MENTIONS).where(
                    Mention.object_id == oid, Mention.actor_id.in_(sorted(gone))
                )
            )
    if inserts:
        session.execute(MENTIONS.insert(), inserts)
    return added
