"""Streaming internals without a server: event payloads (NOTIFY's 8000-byte limit), what a
flush emits, bounded subscriber queues, and the hub's fan-out on SQLite."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from t3r1_fed.config import Settings
from t3r1_fed.context import Context
from t3r1_fed.db.engine import upgrade
from t3r1_fed.db.models import Object, Share
from t3r1_fed.db.models_api import Notification
from t3r1_fed.streaming import events as ev
from t3r1_fed.streaming.bus import Hub, Subscriber
from t3r1_fed.streaming.facts import Fact


def test_payloads_round_trip_and_stay_small() -> None:
    events = [ev.StreamEvent(ev.STATUS, (1 << 62) + i) for i in range(2000)]
    events.append(ev.StreamEvent(ev.NOTIFICATION, 7))
    payloads = ev.encode(events)
    assert len(payloads) > 1
    assert all(len(p.encode()) <= ev.MAX_PAYLOAD for p in payloads)
    decoded = [e for p in payloads for e in ev.decode(p)]
    assert decoded == events


@pytest.mark.parametrize("payload", [
    "", "nope", "{}", '[["x", 1]]', '[["s", "1"]]', '[["s", -1]]', '[["s", true]]',
    f'[["s", {1 << 63}]]', '[["s"]]',
])
def test_decode_drops_malformed(payload: str) -> None:
    assert ev.decode(payload) == []


def test_collect_new_rows_edits_and_deletions() -> None:
    now = datetime.now(UTC)
    post = Object(sid=10, uri="https://x/o/1", type="Note", author_id=1, raw="{}")
    boost = Share(sid=11, uri="https://x/a/1", actor_id=2, object_id=1)
    note = Notification(id=5, recipient_id=1, type="follow", from_actor_id=2)
    assert ev.collect([post, boost, note], []) == [
        ev.StreamEvent(ev.STATUS, 10), ev.StreamEvent(ev.STATUS, 11),
        ev.StreamEvent(ev.NOTIFICATION, 5),
    ]
    # A row changed in the same flush it was created in is only new.
    post.updated = now
    assert ev.collect([post], [post]) == [ev.StreamEvent(ev.STATUS, 10)]
    assert ev.collect([], [], [boost]) == [ev.StreamEvent(ev.UNBOOST, 11, 2)]


def test_collect_edits_and_removals_of_persistent_rows() -> None:
    from sqlalchemy.orm import make_transient_to_detached

    def persistent(kind: str = "post") -> Object:
        row = Object(id=1, sid=10, uri="https://x/o/1", type="Note", author_id=1, raw="{}",
                     kind=kind, content="a", name=None, summary=None, updated=None,
                     deleted_at=None, removed_at=None)
        make_transient_to_detached(row)  # loaded: later changes have a history
        return row

    now = datetime.now(UTC)
    row = persistent()
    row.updated = now
    assert ev.collect([], [row]) == [ev.StreamEvent(ev.EDIT, 10)]
    row = persistent()
    row.removed_at = now
    assert ev.collect([], [row]) == [ev.StreamEvent(ev.DELETE, 10)]
    row = persistent()
    row.deleted_at, row.updated = now, now
    assert ev.collect([], [row]) == [ev.StreamEvent(ev.DELETE, 10)]
    # A poll's `updated` moves with every vote: no edit event unless its text changed.
    poll = persistent("poll")
    poll.updated = now
    assert ev.collect([], [poll]) == []
    poll.content = "b"
    assert ev.collect([], [poll]) == [ev.StreamEvent(ev.EDIT, 10)]


def test_subscriber_is_bounded() -> None:
    sub = Subscriber(2)
    for i in range(3):
        sub.offer(Fact("update", i))
    assert sub.queue.qsize() == 2 and sub.overflowed.is_set()


async def test_hub_fans_out_commits_of_any_engine_on_the_same_database(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}"
    await upgrade(url)
    settings = Settings.from_mapping({"domain": "example.test", "data_dir": tmp_path,
                                      "database_url": url})
    web_ctx, other = Context.create(settings), Context.create(settings)
    hub = Hub(web_ctx, queue_size=8)
    await hub.start()
    try:
        assert hub.healthy
        sub = hub.subscribe()
        from t3r1_fed.actors.local import create_user

        async with other.sessions() as s, s.begin():
            await create_user(s, other.uris, "example.test", "ana", "password-ana")
        async with other.sessions() as s, s.begin():
            from sqlalchemy import select

            from t3r1_fed.db.models import Actor

            ana = (await s.execute(select(Actor).where(Actor.username == "ana"))).scalar_one()
            post = Object(uri="https://example.test/o/1", local=True, type="Note",
                          author_id=ana.id, raw=orjson.dumps({}).decode(),
                          visibility="public", kind="post")
            s.add(post)
        fact = await asyncio.wait_for(sub.queue.get(), 5)
        assert fact.event == "update" and fact.id == post.sid
        assert fact.public and fact.local and ana.id in fact.home
        # Rolled back: nothing.
        async with other.sessions() as s:
            await s.begin()
            s.add(Object(uri="https://example.test/o/2", local=True, type="Note",
                         author_id=ana.id, raw="{}", kind="post"))
            await s.flush()
            await s.rollback()
        await asyncio.sleep(0.2)
        assert sub.queue.empty()
        hub.unsubscribe(sub)
    finally:
        await hub.close()
        await web_ctx.engine.dispose()
        await other.engine.dispose()
