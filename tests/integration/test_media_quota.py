"""Storage quotas (media/quota.py): a member's uploads through the client API
(POST /api/v2/media → 422 past the quota, nothing stored; DELETE frees it), the service API
(coops/resources.upload_resource → QuotaExceeded), a cooperative's cap, and
`t3r1 admin media usage`."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.follows import follow
from t3r1_fed.context import Context
from t3r1_fed.coops.resources import upload_resource
from t3r1_fed.db.models import Follow
from t3r1_fed.db.models_coops import Media
from t3r1_fed.media import upload as up
from t3r1_fed.media.quota import human, member_usage
from tests.conftest import StartInstance
from tests.integration.test_api_media import call, form, noise_png, token
from tests.integration.test_resource_folders import actor_row
from tests.integration.test_resources import PDF
from tests.integration.test_toolkit_cli import Cli, ok, t3r1  # noqa: F401
from tests.testrig import Instance, eventually


def files_in(inst: Instance) -> int:
    media: Path = inst.settings.media_dir
    return sum(1 for p in media.rglob("*") if p.is_file()) if media.exists() else 0


async def media_rows(inst: Instance) -> int:
    async with inst.session() as s:
        return int((await s.execute(select(func.count()).select_from(Media))).scalar_one())


async def test_member_and_coop_quotas(
    instances: StartInstance, t3r1: Cli, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    image = noise_png(90, 90)
    stored_size = len(up.process(image, "x.png", 20_000_000, 40_000_000).data)
    quota = 2 * stored_size + stored_size // 2  # two fit, not three
    coop_quota = 2 * len(PDF) + 10  # two PDFs fit in the cooperative, not three
    inst = await instances("127.0.0.2", oauth_password_grant="1", media_quota_bytes=quota,
                           coop_media_quota_bytes=coop_quota)
    alice = await inst.create_user("alice")
    await inst.create_user("bob")
    coop = await inst.create_coop("syndic", "alice")
    tok = await token(inst, "alice")
    # the CLI reads its settings from the environment, as on a server
    monkeypatch.setenv("T3R1_MEDIA_QUOTA_BYTES", str(quota))
    monkeypatch.setenv("T3R1_COOP_MEDIA_QUOTA_BYTES", str(coop_quota))

    ids = []
    for i in range(2):
        status, doc = await call(inst, "POST", "/api/v2/media", tok,
                                 data=form(image, f"a{i}.png", "image/png"))
        assert status == 200, doc
        ids.append(doc["id"])
    rows, files = await media_rows(inst), files_in(inst)

    # the third is refused with a clear error, and nothing is stored
    status, err = await call(inst, "POST", "/api/v2/media", tok,
                             data=form(image, "a2.png", "image/png"))
    assert status == 422 and "quota" in err["error"], err
    assert await media_rows(inst) == rows and files_in(inst) == files

    usage = ok(await t3r1(inst, "admin", "media", "usage", "alice"))
    assert usage.startswith("alice\t") and "2 files" in usage
    assert f"{2 * stored_size} bytes" in usage and f"used of {human(quota)} (" in usage

    # the service API refuses too (QuotaExceeded, an UploadRefused with status 422)
    async def service_upload(ctx: Context, s: AsyncSession) -> None:
        author, group = await actor_row(s, alice), await actor_row(s, coop)
        with pytest.raises(up.QuotaExceeded, match="quota") as refused:
            await upload_resource(ctx, s, author, group, noise_png(90, 90), filename="p.png")
        assert refused.value.status == 422

    await inst.run(service_upload)
    assert await media_rows(inst) == rows and files_in(inst) == files

    # deleting an upload frees its share: the third now fits
    status, _ = await call(inst, "DELETE", f"/api/v1/media/{ids[0]}", tok)
    assert status == 200
    status, doc = await call(inst, "POST", "/api/v2/media", tok,
                             data=form(image, "a3.png", "image/png"))
    assert status == 200, doc

    async def used(ctx: Context, s: AsyncSession) -> int:
        return (await member_usage(s, (await actor_row(s, alice)).id, quota)).used

    assert await inst.run(used) == 2 * stored_size

    # the cooperative's cap: bob (far below his own quota) fills it with two files
    async def bob_joins(ctx: Context, s: AsyncSession) -> None:
        await follow(ctx, s, "bob", f"syndic@{inst.domain}")

    await inst.run(bob_joins)

    async def member() -> bool:
        async with inst.session() as s:
            return (await s.execute(select(Follow.state))).scalar() == "accepted"

    await eventually(member, what="bob is a member")

    async def bob_uploads(ctx: Context, s: AsyncSession) -> int:
        author, group = await actor_row(s, f"{inst.base}/u/bob"), await actor_row(s, coop)
        done = 0
        for i in range(3):
            try:
                await upload_resource(ctx, s, author, group, PDF, filename=f"s{i}.pdf")
                done += 1
            except up.QuotaExceeded as e:
                assert "cooperative's storage quota" in str(e)
        return done

    assert await inst.run(bob_uploads) == 2
    usage = ok(await t3r1(inst, "admin", "media", "usage", "bob"))
    assert "syndic" in usage and "(cooperative)" in usage
