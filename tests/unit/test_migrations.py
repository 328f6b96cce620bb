"""The schema comes only from migrations: applying them all yields exactly the models."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from t3r1_fed.db.engine import upgrade_sync
from t3r1_fed.db.models import Base


def test_migrations_match_models(tmp_path: Path) -> None:
    db = tmp_path / "m.sqlite3"
    upgrade_sync(f"sqlite+aiosqlite:///{db}")
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations differ: {diff}"


def test_upgrade_twice_then_downgrade_to_base(tmp_path: Path) -> None:
    from alembic import command

    from t3r1_fed.db.engine import _alembic_config

    url = f"sqlite+aiosqlite:///{tmp_path / 'd.sqlite3'}"
    upgrade_sync(url)
    upgrade_sync(url)  # nothing to do the second time
    command.downgrade(_alembic_config(url), "base")
    engine = create_engine(f"sqlite:///{tmp_path / 'd.sqlite3'}")
    with engine.connect() as conn:
        tables = {
            r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='table'")
        }
    engine.dispose()
    assert tables <= {"alembic_version"}
