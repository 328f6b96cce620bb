"""`toot` (the Mastodon command-line client, from PyPI) against our server, as a subprocess:
`login_cli` (password grant, enabled on this instance), `post` into a cooperative by
mentioning it, `timeline` (home), `notifications`. toot keeps its configuration under
$XDG_CONFIG_HOME, a temporary directory here."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.coops.membership import group_actor, join, user_actor
from t3r1_fed.coops.news import publish_news
from tests.conftest import StartInstance
from tests.interop._support import require
from tests.testrig import Instance, eventually

pytestmark = pytest.mark.interop

require("toot", "toot>=0.47")
TOOT = shutil.which("toot", path=str(Path(sys.executable).parent)) or "toot"


async def toot(config: Path, *args: str) -> tuple[int, str]:
    env = {**os.environ, "XDG_CONFIG_HOME": str(config), "NO_COLOR": "1", "TERM": "dumb",
           "COLUMNS": "120"}
    proc = await asyncio.create_subprocess_exec(
        TOOT, *args, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, out.decode("utf-8", "replace")


async def test_toot_login_post_timeline_notifications(
    instances: StartInstance, tmp_path: Path
) -> None:
    a: Instance = await instances("127.0.0.2", oauth_password_grant="1")
    await a.create_user("alice")
    await a.create_user("bob")
    await a.create_coop("syndicat", "bob")

    async def members(ctx: Context, s: AsyncSession) -> None:
        for who in ("alice", "bob"):
            await join(ctx, s, await user_actor(s, who), await group_actor(s, "syndicat"))

    await a.run(members)

    rc, out = await toot(tmp_path, "login_cli", "-i", a.base, "-e", "alice",
                         "-p", "password-alice")
    assert rc == 0 and "Successfully logged in" in out, out
    rc, out = await toot(tmp_path, "login_cli", "-i", a.base, "-e", "alice", "-p", "wrong")
    assert rc != 0 and "Login failed" in out, out

    # A status mentioning the cooperative becomes a post in it, redistributed by the group.
    rc, out = await toot(tmp_path, "post", "@syndicat Assemblée générale jeudi à 18h")
    assert rc == 0 and "posted" in out.lower(), out

    async def redistributed() -> bool:
        rc, out = await toot(tmp_path, "timeline", "--once", "--count", "20")
        return rc == 0 and "Assemblée générale jeudi" in out and "syndicat" in out

    await eventually(redistributed, timeout=20, what="the post in the home timeline")

    # bob mentions alice in the cooperative: a mention notification for her.
    async def thanks(ctx: Context, s: AsyncSession) -> None:
        await publish_news(ctx, s, await user_actor(s, "bob"), "syndicat", "Merci @alice !")

    await a.run(thanks)

    async def notified() -> str | None:
        rc, out = await toot(tmp_path, "notifications")
        return out if rc == 0 and "Merci" in out else None

    out = await eventually(notified, timeout=20, what="the mention notification")
    assert "bob" in out, out
