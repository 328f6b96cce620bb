"""The `t3r1` command, run as a real subprocess on a fresh data directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from t3r1_fed.db.engine import make_engine, make_sessionmaker
from t3r1_fed.db.models import Activity, Actor, Coop, Object, User
from tests.testrig import Databases


def t3r1(data: Path, *args: str, db: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "T3R1_LOG_LEVEL": "WARNING"}
    env.pop("T3R1_DATABASE_URL", None)
    if db:
        env["T3R1_DATABASE_URL"] = db
    return subprocess.run(
        [sys.executable, "-m", "t3r1_fed.cli", "--data-dir", str(data), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.fixture
async def db_url(databases: Databases, backend: str) -> str | None:
    # On SQLite the CLI's default (a file in the data dir) is what we want to exercise.
    return None if backend == "sqlite" else await databases.get(backend)


async def test_init_admin_verbs_and_errors(tmp_path: Path, db_url: str | None) -> None:
    data = tmp_path / "data"
    r = t3r1(data, "init", "--domain", "Syndicat.Example", db=db_url)
    assert r.returncode == 0, r.stderr
    assert "https://syndicat.example" in r.stdout
    assert 'domain = "syndicat.example"' in (data / "instance.toml").read_text()
    assert t3r1(data, "init", db=db_url).returncode == 0  # idempotent, keeps the domain

    assert (
        t3r1(
            data, "admin", "create-user", "alice", "--password", "secret-pass", "--admin", db=db_url
        ).returncode
        == 0
    )
    r = t3r1(data, "admin", "create-user", "alice", "--password", "secret-pass", db=db_url)
    assert r.returncode == 2 and "already taken" in r.stderr
    r = t3r1(data, "admin", "create-user", "bob", "--password", "short", db=db_url)
    assert r.returncode == 2 and "8 characters" in r.stderr
    r = t3r1(
        data,
        "admin",
        "create-coop",
        "Cheminots",
        "--owner",
        "alice",
        "--title",
        "Cheminots de Lyon",
        db=db_url,
    )
    assert r.returncode == 0, r.stderr
    assert "https://syndicat.example/c/cheminots" in r.stdout
    r = t3r1(data, "admin", "create-coop", "alice", "--owner", "alice", db=db_url)
    assert r.returncode == 2 and "already taken" in r.stderr  # one acct: namespace
    r = t3r1(data, "admin", "create-coop", "x/y", "--owner", "alice", db=db_url)
    assert r.returncode == 2 and "invalid name" in r.stderr
    r = t3r1(data, "admin", "post", "alice", "cheminots", "Grève reconductible", db=db_url)
    assert r.returncode == 0, r.stderr
    note_uri = r.stdout.strip().splitlines()[0]
    assert note_uri.startswith("https://syndicat.example/o/")
    r = t3r1(data, "admin", "post", "alice", "nowhere", "x", db=db_url)
    assert r.returncode == 2 and "no cooperative" in r.stderr

    engine = make_engine(db_url or f"sqlite+aiosqlite:///{data / 't3r1.sqlite3'}")
    try:
        async with make_sessionmaker(engine)() as s:
            assert (await s.execute(select(func.count()).select_from(User))).scalar_one() == 1
            coop = (await s.execute(select(Coop))).scalar_one()
            assert coop.name == "cheminots" and coop.openness == "open"
            note = (await s.execute(select(Object).where(Object.uri == note_uri))).scalar_one()
            assert note.group_id == coop.actor_id and "Grève reconductible" in (note.content or "")
            kinds = sorted((await s.execute(select(Activity.type))).scalars())
            assert kinds == ["Announce", "Announce", "Create"]  # both Announce forms
            instance = (
                await s.execute(select(Actor).where(Actor.type == "Application"))
            ).scalar_one()
            assert instance.uri == "https://syndicat.example/actor"
    finally:
        await engine.dispose()
