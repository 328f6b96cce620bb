"""Shared fixtures: database backends and running instances (see tests/testrig.py).

Database-backed tests run on SQLite and, when T3R1_TEST_DATABASE_URL is set (CI sets it),
on PostgreSQL too. Without it the suite says once that PostgreSQL was not exercised; with
T3R1_REQUIRE_POSTGRES=1 (CI) a missing or unreachable PostgreSQL is an error, never a skip.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from tests.testrig import SAMPLES, Databases, Instance, pg_admin_url, start_instance

BACKENDS = ["sqlite"] + (["postgresql"] if pg_admin_url() else [])


def pytest_report_header(config: pytest.Config) -> str:
    if pg_admin_url():
        return "t3r1 database backends: sqlite, postgresql"
    return ("t3r1 database backends: sqlite only (set T3R1_TEST_DATABASE_URL="
            "postgresql://postgres@127.0.0.1:5432/postgres to also run on PostgreSQL)")


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("T3R1_REQUIRE_POSTGRES") == "1" and not pg_admin_url():
        raise pytest.UsageError("T3R1_REQUIRE_POSTGRES=1 but T3R1_TEST_DATABASE_URL is not set")


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    if not SAMPLES.is_dir():
        pytest.skip(f"real-world samples not found at {SAMPLES} (../shared/samples)")
    return SAMPLES


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    dbs = Databases(tmp_path_factory.mktemp("dbs"))
    yield dbs
    asyncio.run(dbs.cleanup(drop_template=True))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


StartInstance = Callable[..., Awaitable[Instance]]


@pytest.fixture
async def instances(
    databases: Databases, backend: str, tmp_path: Path
) -> AsyncIterator[StartInstance]:
    """Factory: `await instances("127.0.0.2")` starts a real instance on that address."""
    started: list[Instance] = []

    async def start(ip: str = "127.0.0.2", **overrides: object) -> Instance:
        url = await databases.get(backend)
        data = tmp_path / f"{ip}-{len(started)}"
        inst = await start_instance(ip, url, data, **overrides)
        started.append(inst)
        return inst

    yield start
    for inst in reversed(started):
        await inst.stop()
    await databases.cleanup()
