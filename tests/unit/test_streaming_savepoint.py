"""On SQLite, stream events leave the session on the real COMMIT, not when a SAVEPOINT is
released: SQLAlchemy calls `after_commit` for both, and a hub resolving the events of a
released savepoint would not find the rows yet (the inbox stores objects in savepoints)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select

from t3r1_fed.actors.local import create_user
from t3r1_fed.config import Settings
from t3r1_fed.context import Context
from t3r1_fed.db.engine import upgrade
from t3r1_fed.db.models import Actor, Object
from t3r1_fed.streaming import events as ev


async def test_events_wait_for_the_outer_commit(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}"
    await upgrade(url)
    ctx = Context.create(Settings.from_mapping({
        "domain": "example.test", "data_dir": tmp_path, "database_url": url}))
    seen: list[list[ev.StreamEvent]] = []

    def sink(_key: str, events: Sequence[ev.StreamEvent]) -> None:
        seen.append(list(events))

    ev.add_local_sink(sink)
    try:
        async with ctx.sessions() as s, s.begin():
            await create_user(s, ctx.uris, "example.test", "ana", "password-ana")
        seen.clear()
        async with ctx.sessions() as s:
            await s.begin()
            ana = (await s.execute(select(Actor).where(Actor.username == "ana"))).scalar_one()
            post = Object(uri="https://example.test/o/1", local=True, type="Note",
                          author_id=ana.id, raw="{}", visibility="public", kind="post")
            async with s.begin_nested():
                s.add(post)
            assert seen == []  # the savepoint is released, the transaction still open
            await s.commit()
        assert seen == [[ev.StreamEvent(ev.STATUS, post.sid)]]
    finally:
        ev._sinks.remove(sink)
        await ctx.engine.dispose()
