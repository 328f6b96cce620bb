"""Test rig: real t3r1 instances on distinct loopback addresses, each with its own database.

Modelled on GoToSocial's testrig: named, canonical fixtures. Every instance is a real
aiohttp server on 127.0.0.N with real HTTP, real signatures and its own database (a copy of
a migrated template, SQLite file or PostgreSQL database).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.local import create_coop, create_user, ensure_instance_actor
from t3r1_fed.app import create_app
from t3r1_fed.appkeys import CTX
from t3r1_fed.config import Settings
from t3r1_fed.context import Context
from t3r1_fed.db.engine import upgrade_sync

T = TypeVar("T")

PG_ENV = "T3R1_TEST_DATABASE_URL"
REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO.parent / "shared" / "samples"


def pg_admin_url() -> str | None:
    return os.environ.get(PG_ENV) or None


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def _with_db(url: str, db: str) -> str:
    head, _, _ = url.rpartition("/")
    return f"{head}/{db}"


class Databases:
    """Hands out fresh, migrated databases by copying a template made once per run."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self._sqlite_template: Path | None = None
        self._pg_template: str | None = None
        self._pg_created: list[str] = []

    def sqlite(self) -> str:
        if self._sqlite_template is None:
            tpl = self.tmp / "template.sqlite3"
            upgrade_sync(f"sqlite+aiosqlite:///{tpl}")
            self._sqlite_template = tpl
        path = self.tmp / f"db-{uuid.uuid4().hex[:10]}.sqlite3"
        shutil.copy(self._sqlite_template, path)
        return f"sqlite+aiosqlite:///{path}"

    async def postgres(self) -> str:
        admin = pg_admin_url()
        assert admin, f"{PG_ENV} is not set"
        conn = await asyncpg.connect(_asyncpg_dsn(admin))
        try:
            if self._pg_template is None:
                tpl = f"t3r1_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
                await conn.execute(f'CREATE DATABASE "{tpl}"')
                self._pg_created.append(tpl)
                await asyncio.to_thread(upgrade_sync, _with_db(admin, tpl))
                self._pg_template = tpl
            name = f"t3r1_t_{uuid.uuid4().hex[:12]}"
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self._pg_template}"')
            self._pg_created.append(name)
        finally:
            await conn.close()
        return _with_db(admin, name)

    async def get(self, backend: str) -> str:
        if backend == "sqlite":
            return await asyncio.to_thread(self.sqlite)
        return await self.postgres()

    async def cleanup(self, *, drop_template: bool = False) -> None:
        """Drop the databases handed out (and the template, at the end of the run)."""
        admin = pg_admin_url()
        names = [n for n in self._pg_created if drop_template or n != self._pg_template]
        if not admin or not names:
            return
        conn = await asyncpg.connect(_asyncpg_dsn(admin))
        try:
            for name in reversed(names):
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
        self._pg_created = [n for n in self._pg_created if n not in names]
        if drop_template:
            self._pg_template = None


def free_socket(ip: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((ip, 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


@dataclass
class Instance:
    """A running t3r1 instance."""

    ip: str
    port: int
    settings: Settings
    runner: web.AppRunner

    @property
    def ctx(self) -> Context:
        return self.runner.app[CTX]

    @property
    def domain(self) -> str:
        return self.settings.domain

    @property
    def base(self) -> str:
        return self.settings.base_url

    def session(self) -> AsyncSession:
        return self.ctx.sessions()

    async def run(self, fn: Callable[[Context, AsyncSession], Awaitable[T]]) -> T:
        """Run `fn` in one committed transaction (as a web request or CLI command would)."""
        async with self.ctx.sessions() as session, session.begin():
            return await fn(self.ctx, session)

    async def create_user(self, name: str, *, admin: bool = False) -> str:
        async def go(ctx: Context, s: AsyncSession) -> str:
            await create_user(s, ctx.uris, ctx.settings.domain, name, "password-" + name,
                              admin=admin)
            return ctx.uris.user(name)

        return await self.run(go)

    async def create_coop(self, name: str, owner: str, **kw: Any) -> str:
        async def go(ctx: Context, s: AsyncSession) -> str:
            await create_coop(s, ctx.uris, ctx.settings.domain, name, owner, **kw)
            return ctx.uris.coop(name)

        return await self.run(go)

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_instance(
    ip: str, database_url: str, data_dir: Path, *, sock: socket.socket | None = None,
    **settings_overrides: Any,
) -> Instance:
    sock = sock or free_socket(ip)
    port = sock.getsockname()[1]
    values: dict[str, Any] = {
        "domain": f"{ip}:{port}", "scheme": "http", "data_dir": data_dir,
        "database_url": database_url, "allow_private_networks": "127.0.0.0/8",
        "backoff_scale": 0.002, "poll_interval": 0.05, "lease_seconds": 5.0,
        "log_level": "WARNING", "poll_update_interval": 0.0, "maintenance_interval": 0.5,
    }
    values.update(settings_overrides)
    settings = Settings.from_mapping(values)
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    inst = Instance(ip, port, settings, runner)
    await inst.run(lambda ctx, s: ensure_instance_actor(s, ctx.uris, ctx.settings.domain))
    return inst


async def eventually(check: Callable[[], Awaitable[T]], *, timeout: float = 15.0,
                     interval: float = 0.05, what: str = "condition") -> T:
    """Poll `check` until it returns a truthy value; fail with `what` after `timeout`."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    last: Any = None
    while loop.time() < end:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last value: {last!r})")
