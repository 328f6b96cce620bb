"""The membership verbs of `t3r1 admin` (local members only), run in-process through
`t3r1_fed.cli.main` (tests/integration/test_cli.py runs the command as a subprocess)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from t3r1_fed.cli import main
from t3r1_fed.db.engine import make_engine, make_sessionmaker
from t3r1_fed.db.models import Actor, CoopRole, Follow
from t3r1_fed.db.models_coops import CoopBan
from tests.testrig import Databases

BASE = "https://syndicat.example"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Result]:
    monkeypatch.setenv("T3R1_LOG_LEVEL", "WARNING")
    monkeypatch.delenv("T3R1_DATABASE_URL", raising=False)

    def run(data: Path, *args: str, db: str | None = None) -> Result:
        if db:
            monkeypatch.setenv("T3R1_DATABASE_URL", db)
        code = main(["--data-dir", str(data), *args])
        out = capsys.readouterr()
        return Result(code, out.out, out.err)

    return run


def test_requests_roles_invites_bans(
    tmp_path: Path, databases: Databases, backend: str, cli: Callable[..., Result]
) -> None:
    t3r1 = cli
    db_url = None if backend == "sqlite" else asyncio.run(databases.get(backend))
    data = tmp_path / "data"
    assert t3r1(data, "init", "--domain", "syndicat.example", db=db_url).returncode == 0
    for name in ("alice", "bob", "carol", "dave"):
        r = t3r1(data, "admin", "create-user", name, "--password", f"pass-{name}!", db=db_url)
        assert r.returncode == 0, r.stderr
    r = t3r1(data, "admin", "create-coop", "filtre", "--owner", "alice", "--openness",
             "moderated", db=db_url)
    assert r.returncode == 0, r.stderr
    coop = f"{BASE}/c/filtre"
    assert t3r1(data, "admin", "follow", "bob", coop, db=db_url).stdout.startswith("follow pending")

    r = t3r1(data, "admin", "requests", "filtre", db=db_url)
    assert r.returncode == 0 and r.stdout.startswith(f"{BASE}/u/bob\t"), r.stderr
    r = t3r1(data, "admin", "approve", "filtre", "bob", db=db_url)
    assert r.returncode == 0 and "approved" in r.stdout, r.stderr
    assert t3r1(data, "admin", "requests", "filtre", db=db_url).stdout.strip() == (
        "no pending request"
    )

    r = t3r1(data, "admin", "set-role", "filtre", "carol", "moderator", "--by", "bob", db=db_url)
    assert r.returncode == 2 and "admins" in r.stderr
    r = t3r1(data, "admin", "set-role", "filtre", "alice", "member", "--by", "alice", db=db_url)
    assert r.returncode == 2 and "last admin" in r.stderr
    r = t3r1(data, "admin", "set-role", "filtre", "carol", "moderator", "--by", "alice",
             db=db_url)
    assert r.returncode == 0, r.stderr

    r = t3r1(data, "admin", "invite", "filtre", "dave", "--by", "carol", db=db_url)
    assert r.returncode == 0, r.stderr
    r = t3r1(data, "admin", "accept-invite", "dave", "filtre", db=db_url)
    assert r.returncode == 0, r.stderr

    r = t3r1(data, "admin", "ban", "filtre", "bob", "--by", "carol", "--reason", "insultes",
             "--until", "2099-01-01T00:00:00", db=db_url)
    assert r.returncode == 0 and "until 2099" in r.stdout, r.stderr
    r = t3r1(data, "admin", "follow", "bob", coop, db=db_url)
    assert r.returncode == 2 and "does not accept" in r.stderr

    asyncio.run(check_db(db_url or f"sqlite+aiosqlite:///{data / 't3r1.sqlite3'}"))

    r = t3r1(data, "admin", "unban", "filtre", "bob", "--by", "carol", db=db_url)
    assert r.returncode == 0, r.stderr
    r = t3r1(data, "admin", "unban", "filtre", "bob", "--by", "carol", db=db_url)
    assert r.returncode == 2 and "not banned" in r.stderr


async def check_db(url: str) -> None:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as s:
            members = (
                await s.execute(
                    select(Actor.username, Follow.state)
                    .join(Follow, Follow.follower_id == Actor.id)
                    .order_by(Actor.username)
                )
            ).all()
            assert [tuple(m) for m in members] == [("dave", "accepted")]
            roles = sorted((await s.execute(select(CoopRole.role))).scalars())
            assert roles == ["admin", "moderator"]
            b = (await s.execute(select(CoopBan))).scalar_one()
            assert b.reason == "insultes" and b.expires_at is not None
            assert b.expires_at.year == 2099
    finally:
        await engine.dispose()
