"""Stream events: what happened, as small references, emitted centrally from the ORM.

Every new status (an `Object` row), boost (a `Share` row, a cooperative's redistribution
included) and notification, every edit (`Object.updated` set) and deletion
(`Object.deleted_at` set) made through an ORM session becomes a `StreamEvent` — whatever
code path made it (local posting, the inbox worker, the CLI). Nothing else has to call us.

Delivery to the web processes (streaming/bus.py):
- PostgreSQL: `pg_notify` is executed in the writing transaction, right after the flush
  that wrote the rows. PostgreSQL delivers notifications only when (and if) the
  transaction commits, to every process LISTENing on the database — the worker and the
  CLI reach the web processes, and a rollback sends nothing.
- SQLite (a single process serves): the events are kept on the session and handed to the
  hubs of this process after the commit; a rollback drops them.

Payloads are references (a status id, a notification id), never content: a NOTIFY payload
is limited to 8000 bytes, and each connection renders what its viewer may see.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
from sqlalchemy import Delete, Insert, Result, event, inspect, select, text
from sqlalchemy.orm import ORMExecuteState, Session

from t3r1_fed.db.models import Object, Share
from t3r1_fed.db.models_api import Notification

log = logging.getLogger("t3r1.streaming")

CHANNEL: Final = "t3r1_stream"
# Kinds of events: a new status (object or boost), an edit, a deletion, a notification.
STATUS: Final = "s"
EDIT: Final = "e"
DELETE: Final = "d"
NOTIFICATION: Final = "n"
UNBOOST: Final = "b"  # a boost withdrawn (its row deleted): `actor` is the booster
KINDS: Final = frozenset({STATUS, EDIT, DELETE, NOTIFICATION, UNBOOST})
# NOTIFY payloads must stay under 8000 bytes; events are batched up to this size.
MAX_PAYLOAD: Final = 7000
_PENDING: Final = "t3r1_stream_pending"


@dataclass(frozen=True)
class StreamEvent:
    kind: str  # STATUS | EDIT | DELETE | NOTIFICATION | UNBOOST
    id: int  # the status id (sid) for statuses, the notification's id
    actor: int = 0  # UNBOOST: the booster (the row is gone when the event is resolved)


def encode(events: Sequence[StreamEvent]) -> list[str]:
    """JSON payloads (`[["s", 123], ["b", 125, 7], …]`), each under MAX_PAYLOAD bytes."""
    out: list[str] = []
    batch: list[list[Any]] = []
    size = 2
    for ev in events:
        item: list[Any] = [ev.kind, ev.id, ev.actor] if ev.actor else [ev.kind, ev.id]
        n = len(orjson.dumps(item)) + 1
        if batch and size + n > MAX_PAYLOAD:
            out.append(orjson.dumps(batch).decode())
            batch, size = [], 2
        batch.append(item)
        size += n
    if batch:
        out.append(orjson.dumps(batch).decode())
    return out


def decode(payload: str | bytes) -> list[StreamEvent]:
    """Events from a payload; anything malformed is dropped (the channel is ours, but a
    stray `NOTIFY t3r1_stream` must not crash the listener)."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(doc, list):
        return []
    out: list[StreamEvent] = []
    for item in doc[:10_000]:
        if (isinstance(item, list) and len(item) in (2, 3) and item[0] in KINDS
                and all(_valid_id(i) for i in item[1:])):
            out.append(StreamEvent(item[0], *item[1:]))
    return out


def _valid_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < (1 << 63)


def collect(
    new: Iterable[object], dirty: Iterable[object], deleted: Iterable[object] = ()
) -> list[StreamEvent]:
    """The events of one flush: `new`, `dirty` and `deleted` instances of the session
    (attribute histories are still those of the flush, as in `after_flush`)."""
    out: list[StreamEvent] = []
    created: set[int] = set()
    for row in new:
        if isinstance(row, Object) and row.sid is not None:
            out.append(StreamEvent(STATUS, row.sid))
            created.add(row.sid)
        elif isinstance(row, Share) and row.sid is not None:
            out.append(StreamEvent(STATUS, row.sid))
        elif isinstance(row, Notification) and row.id is not None:
            out.append(StreamEvent(NOTIFICATION, row.id))
    for row in dirty:
        if not isinstance(row, Object) or row.sid is None or row.sid in created:
            continue
        attrs = inspect(row).attrs
        gone = (attrs.deleted_at.history.added and row.deleted_at is not None) or (
            attrs.removed_at.history.added and row.removed_at is not None)
        if gone:
            out.append(StreamEvent(DELETE, row.sid))
        elif (attrs.updated.history.added and row.updated is not None
              and row.deleted_at is None and row.removed_at is None
              # a poll's `updated` moves with its counts: only a real edit is news
              and (row.kind != "poll" or any(
                  attrs[a].history.added for a in ("content", "summary", "name")))):
            out.append(StreamEvent(EDIT, row.sid))
    for row in deleted:
        if isinstance(row, Share) and row.sid is not None:
            out.append(StreamEvent(UNBOOST, row.sid, row.actor_id))
    return out


# -- SQLAlchemy session hooks ------------------------------------------------------------

# Called after a commit on SQLite with (database URL, events): bus.py registers it.
LocalSink = Callable[[str, Sequence[StreamEvent]], None]
_sinks: list[LocalSink] = []


def add_local_sink(sink: LocalSink) -> None:
    if sink not in _sinks:
        _sinks.append(sink)


def _bind_of(session: Session) -> Any:
    return session.get_bind()


def _after_flush(session: Session, _flush_context: Any) -> None:
    _emit(session, collect(session.new, session.dirty, session.deleted))


def _do_orm_execute(state: ORMExecuteState) -> Result[Any] | None:
    """Statements that bypass the unit of work. Boosts are withdrawn with bulk DELETEs
    (coops/redistribute.py, inbox/social.py): read which first. Notifications are inserted
    with Core statements (notify/events.py, in the flush): have such an insert return the
    new ids, and emit them."""
    stmt = state.statement
    if state.is_delete and isinstance(stmt, Delete) and _table(stmt) == "shares":
        rows = state.session.execute(
            select(Share.sid, Share.actor_id).where(*_where(stmt))
        ).all()
        _emit(state.session, [StreamEvent(UNBOOST, sid, actor) for sid, actor in rows])
        return None
    if not (state.is_insert and isinstance(stmt, Insert)
            and _table(stmt) == "notifications" and not stmt._returning):
        return None
    frozen = state.invoke_statement(statement=stmt.returning(Notification.__table__.c.id)).freeze()
    ids = [int(row[0]) for row in frozen().all()]
    _emit(state.session, [StreamEvent(NOTIFICATION, i) for i in ids])
    return frozen()


def _table(stmt: Delete | Insert) -> str | None:
    name = getattr(stmt.table, "name", None)  # ORM statements carry an annotated copy
    return name if isinstance(name, str) else None


def _where(stmt: Delete) -> list[Any]:
    clause = stmt.whereclause
    return [] if clause is None else [clause]


def _emit(session: Session, events: Sequence[StreamEvent]) -> None:
    if not events:
        return
    bind = _bind_of(session)
    if bind.dialect.name == "postgresql":
        conn = session.connection()
        for payload in encode(events):
            conn.execute(text("SELECT pg_notify(:channel, :payload)"),
                         {"channel": CHANNEL, "payload": payload})
        return
    session.info.setdefault(_PENDING, []).extend(events)


def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        # SQLAlchemy also calls after_commit when a SAVEPOINT is released (begin_nested,
        # e.g. inbox/objects.py): nothing is committed yet — wait for the real COMMIT.
        return
    events: list[StreamEvent] = session.info.pop(_PENDING, None) or []
    if not events or not _sinks:
        return
    url = database_key(_bind_of(session).url)
    for sink in list(_sinks):
        try:
            sink(url, events)
        except Exception:  # a streaming failure must never fail a committed write
            log.exception("stream event dispatch failed")


def _after_soft_rollback(session: Session, _previous: Any) -> None:
    # A savepoint's rollback keeps the outer transaction's events (one that names a row
    # rolled back renders nothing); the outermost rollback drops them all.
    if not session.in_transaction():
        session.info.pop(_PENDING, None)


def database_key(url: Any) -> str:
    """One key per database, whichever engine (or Context) points at it."""
    return str(url.render_as_string(hide_password=True))


_installed = False


def install() -> None:
    """Listen on every ORM session of the process (idempotent; `Context.create` calls it,
    so the web server, `t3r1 worker` and the CLI all emit)."""
    global _installed
    if _installed:
        return
    event.listen(Session, "after_flush", _after_flush)
    event.listen(Session, "do_orm_execute", _do_orm_execute, retval=True)
    event.listen(Session, "after_commit", _after_commit)
    event.listen(Session, "after_soft_rollback", _after_soft_rollback)
    _installed = True
