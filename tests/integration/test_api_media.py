"""The Mastodon media API (api/media.py) against a real instance: uploads by multipart
(aiohttp, and the real Mastodon.py client), show, describe, delete, ownership, size caps,
content sniffing, scopes, and `claim_media` for statuses."""

from __future__ import annotations

import asyncio
import io
import os
from typing import Any

import pytest
from aiohttp import ClientSession, FormData
from PIL import Image
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.api.media import claim_media
from t3r1_fed.context import Context
from t3r1_fed.db.models import Actor
from t3r1_fed.db.models_coops import Media
from t3r1_fed.media.attach import publish_news_with_media
from tests.conftest import StartInstance
from tests.integration.accounts_api_support import token
from tests.interop._support import require
from tests.testrig import Instance

MAX_BYTES = 2_000_000  # this test's media cap: above the 1 MB body limit of the app


async def call(inst: Instance, method: str, path: str, tok: str | None,
               headers: dict[str, str] | None = None, **kw: Any) -> tuple[int, Any]:
    headers = dict(headers or {})
    if tok:
        headers["Authorization"] = f"Bearer {tok}"
    async with ClientSession() as http:
        async with http.request(method, inst.base + path, headers=headers, **kw) as r:
            body = await r.json() if r.content_type == "application/json" else await r.read()
            return r.status, body


def form(data: bytes, filename: str, content_type: str, **fields: str) -> FormData:
    f = FormData()
    f.add_field("file", data, filename=filename, content_type=content_type)
    for name, value in fields.items():
        f.add_field(name, value)
    return f


def jpeg_with_gps(width: int = 640, height: int = 480) -> bytes:
    img = Image.new("RGB", (width, height), (200, 30, 60))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0)}  # GPS IFD
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif)
    data = buf.getvalue()
    assert b"PhoneMaker" in data
    return data


def noise_png(width: int, height: int) -> bytes:
    """Incompressible pixels: the PNG is about width × height × 3 bytes."""
    img = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


async def _fetch(url: str) -> tuple[int, str, bytes]:
    async with ClientSession() as http, http.get(url) as r:
        return r.status, r.content_type, await r.read()


async def test_upload_show_update_delete_and_ownership(instances: StartInstance) -> None:
    inst = await instances("127.0.0.2", oauth_password_grant="1", media_max_bytes=MAX_BYTES)
    await inst.create_user("alice")
    await inst.create_user("bob")
    await inst.create_coop("syndic", "alice")
    alice, bob = await token(inst, "alice"), await token(inst, "bob")

    # v2 upload of a JPEG carrying EXIF/GPS: processed at once (200, url set), cleaned.
    status, doc = await call(inst, "POST", "/api/v2/media", alice, data=form(
        jpeg_with_gps(), "vacances.jpg", "image/jpeg",
        description="Banderole de la section", focus="-0.5,0.25"))
    assert status == 200, doc
    assert doc["type"] == "image" and doc["description"] == "Banderole de la section"
    assert doc["meta"]["original"] == {"width": 640, "height": 480, "size": "640x480",
                                       "aspect": 640 / 480}
    assert doc["meta"]["small"]["width"] == 400 and doc["meta"]["small"]["height"] == 300
    assert doc["remote_url"] is None and doc["preview_remote_url"] is None
    assert isinstance(doc["blurhash"], str) and len(doc["blurhash"]) >= 6
    assert doc["url"].startswith(inst.base + "/media/") and doc["url"].endswith(".jpg")
    st, ctype, body = await _fetch(doc["url"])
    assert st == 200 and ctype == "image/jpeg" and b"PhoneMaker" not in body
    with Image.open(io.BytesIO(body)) as img:
        assert img.size == (640, 480) and not img.getexif()
    st, ctype, body = await _fetch(doc["preview_url"])
    assert st == 200 and ctype == "image/webp"
    with Image.open(io.BytesIO(body)) as img:
        assert img.size == (400, 300)
    mid = doc["id"]

    # GET: the owner sees it; anyone else gets 404, as for an unknown id.
    status, shown = await call(inst, "GET", f"/api/v1/media/{mid}", alice)
    assert status == 200 and shown == doc
    for method in ("GET", "PUT", "DELETE"):
        status, err = await call(inst, method, f"/api/v1/media/{mid}", bob,
                                 data={"description": "volé"})
        assert status == 404 and err == {"error": "Record not found"}, (method, err)
    status, err = await call(inst, "GET", "/api/v1/media/99999999", alice)
    assert status == 404
    status, err = await call(inst, "GET", "/api/v1/media/abc", alice)
    assert status == 404

    # PUT: form or JSON; bad focus and overlong descriptions are refused, nothing changed.
    status, upd = await call(inst, "PUT", f"/api/v1/media/{mid}", alice,
                             data={"description": "Banderole, place de la mairie"})
    assert status == 200 and upd["description"] == "Banderole, place de la mairie"
    status, upd = await call(inst, "PUT", f"/api/v1/media/{mid}", alice,
                             json={"description": "Texte alternatif", "focus": "0.1,-0.9"})
    assert status == 200 and upd["description"] == "Texte alternatif"
    for bad in ({"focus": "2,0"}, {"focus": "abc"}, {"description": "x" * 1501}):
        status, err = await call(inst, "PUT", f"/api/v1/media/{mid}", alice, json=bad)
        assert status == 422 and "Validation failed" in err["error"], (bad, err)
    status, shown = await call(inst, "GET", f"/api/v1/media/{mid}", alice)
    assert shown["description"] == "Texte alternatif"

    # A custom thumbnail is taken at upload (our WebP preview of it), not by PUT (its URL,
    # derived from the file's, is served as immutable).
    thumb = io.BytesIO()
    Image.new("RGB", (100, 50), (0, 0, 255)).save(thumb, format="PNG")
    parts = form(jpeg_with_gps(), "b.jpg", "image/jpeg")
    parts.add_field("thumbnail", thumb.getvalue(), filename="t.png", content_type="image/png")
    status, custom = await call(inst, "POST", "/api/v2/media", alice, data=parts)
    assert status == 200, custom
    st, ctype, body = await _fetch(custom["preview_url"])
    assert st == 200 and ctype == "image/webp"
    with Image.open(io.BytesIO(body)) as img:
        assert img.size == (100, 50)
    parts = FormData()
    parts.add_field("thumbnail", thumb.getvalue(), filename="t.png", content_type="image/png")
    status, err = await call(inst, "PUT", f"/api/v1/media/{mid}", alice, data=parts)
    assert status == 422 and "thumbnail" in err["error"], err
    parts = form(jpeg_with_gps(), "b.jpg", "image/jpeg")
    parts.add_field("thumbnail", b"not an image", filename="t.png", content_type="image/png")
    status, err = await call(inst, "POST", "/api/v2/media", alice, data=parts)
    assert status == 422, err

    # A file above the app's 1 MB body limit but under the media cap is accepted (v1).
    big = noise_png(800, 700)
    assert 1_048_576 < len(big) < MAX_BYTES
    status, doc2 = await call(inst, "POST", "/api/v1/media", alice,
                              data=form(big, "bruit.png", "image/png"))
    assert status == 200, doc2
    assert doc2["meta"]["original"]["size"] == "800x700" and doc2["url"].endswith(".png")

    # Above the media cap: 413, JSON, nothing stored.
    async def count(ctx: Context, s: AsyncSession) -> int:
        return len((await s.execute(select(Media.id))).all())

    before = await inst.run(count)
    huge = noise_png(1000, 900)
    assert len(huge) > MAX_BYTES
    status, err = await call(inst, "POST", "/api/v2/media", alice,
                             data=form(huge, "gros.png", "image/png"))
    assert status == 413 and "too large" in err["error"], err

    # Garbage, a non-image, and no file at all: 422, nothing stored.
    for data, name, ctype in ((os.urandom(4096), "photo.jpg", "image/jpeg"),
                              (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "cassee.png", "image/png"),
                              (b"Ordre du jour\n", "notes.txt", "text/plain"),
                              (b"%PDF-1.4\n1 0 obj\n%%EOF\n", "tract.pdf", "application/pdf")):
        status, err = await call(inst, "POST", "/api/v2/media", alice,
                                 data=form(data, name, ctype))
        assert status == 422 and err["error"], (name, err)
    status, err = await call(inst, "POST", "/api/v2/media", alice,
                             data={"description": "sans fichier"})
    assert status == 422 and err == {"error": "Validation failed: File can't be blank"}
    # Broken multipart bodies: a clear JSON error, never a 500.
    for ctype, raw in (("multipart/form-data", b"garbage"),
                       ("multipart/form-data; boundary=XyZ",
                        b'--XyZ\r\nContent-Disposition: form-data; name="file"; '
                        b'filename="a.png"\r\n\r\n\x89PNG\r\n\x1a\n'),
                       ("multipart/form-data; boundary=XyZ", b"")):
        status, err = await call(inst, "POST", "/api/v2/media", alice, data=raw,
                                 headers={"Content-Type": ctype})
        assert status in (400, 422) and err["error"], (ctype, raw, status, err)
    two = form(jpeg_with_gps(), "a.jpg", "image/jpeg")
    two.add_field("file", jpeg_with_gps(), filename="b.jpg", content_type="image/jpeg")
    status, err = await call(inst, "POST", "/api/v2/media", alice, data=two)
    assert status == 422 and "more than one file" in err["error"]
    assert await inst.run(count) == before

    # Scopes: a read-only token may not upload (403), nor read an upload back.
    reader = await token(inst, "alice", "read")
    status, err = await call(inst, "POST", "/api/v2/media", reader,
                             data=form(jpeg_with_gps(), "a.jpg", "image/jpeg"))
    assert status == 403, err
    status, _ = await call(inst, "GET", f"/api/v1/media/{mid}", reader)
    assert status == 403
    granular = await token(inst, "alice", "write:media")
    status, _ = await call(inst, "GET", f"/api/v1/media/{mid}", granular)
    assert status == 200
    status, _ = await call(inst, "POST", "/api/v2/media", None,
                           data=form(jpeg_with_gps(), "a.jpg", "image/jpeg"))
    assert status == 401

    # claim_media (POST /api/v1/statuses): order kept, ownership, state, at most four.
    async def alice_id(s: AsyncSession) -> int:
        return (await s.execute(select(Actor.id).where(Actor.username == "alice",
                                                       Actor.local.is_(True)))).scalar_one()

    async def claim(ids: list[str]) -> list[int] | str:
        async def go(ctx: Context, s: AsyncSession) -> list[int] | str:
            try:
                return [m.id for m in await claim_media(s, await alice_id(s), ids)]
            except Exception as e:  # the HTTP exception carries Mastodon's message
                return str(getattr(e, "text", e))
        return await inst.run(go)

    assert await claim([doc2["id"], mid]) == [int(doc2["id"]), int(mid)]
    assert await claim([mid, mid]) == [int(mid)]
    assert await claim([mid] * 5) == '{"error":"Cannot attach more than 4 files"}'
    status, bobs = await call(inst, "POST", "/api/v2/media", bob,
                              data=form(jpeg_with_gps(), "b.jpg", "image/jpeg"))
    assert status == 200
    assert await claim([mid, bobs["id"], "x"]) == (
        '{"error":"Media ' + bobs["id"] + ', x not found or already attached to another post"}'
    )

    # Attached to a post, an upload can be neither shown, edited nor deleted by the API.
    async def attach(ctx: Context, s: AsyncSession) -> None:
        author = (await s.execute(select(Actor).where(Actor.id == await alice_id(s)))).scalar_one()
        await publish_news_with_media(ctx, s, author, "syndic", "Photo de la manif",
                                      media_ids=[int(mid)])

    await inst.run(attach)
    assert (await call(inst, "GET", f"/api/v1/media/{mid}", alice))[0] == 404
    assert (await call(inst, "PUT", f"/api/v1/media/{mid}", alice,
                       data={"description": "x"}))[0] == 404
    status, err = await call(inst, "DELETE", f"/api/v1/media/{mid}", alice)
    assert status == 422 and "used by a status" in err["error"]
    assert await claim([mid]) == (
        '{"error":"Media ' + mid + ' not found or already attached to another post"}'
    )

    # Unattached: deleted with its files.
    status, body = await call(inst, "DELETE", f"/api/v1/media/{doc2['id']}", alice)
    assert status == 200 and body == {}
    assert (await _fetch(doc2["url"]))[0] == 404
    assert (await _fetch(doc2["preview_url"]))[0] == 404
    assert (await call(inst, "GET", f"/api/v1/media/{doc2['id']}", alice))[0] == 404
    assert (await call(inst, "DELETE", f"/api/v1/media/{doc2['id']}", alice))[0] == 404


async def test_mastodon_py_media_post_and_update(instances: StartInstance) -> None:
    mastodon = require("mastodon", "Mastodon.py>=2")
    inst = await instances("127.0.0.2", oauth_password_grant="1")
    await inst.create_user("alice")
    tok = await token(inst, "alice")
    m: Any = mastodon.Mastodon(access_token=tok, api_base_url=inst.base,
                               version_check_mode="none")
    png = io.BytesIO()
    Image.new("RGBA", (300, 200), (10, 120, 40, 255)).save(png, format="PNG")

    media = await asyncio.to_thread(m.media_post, png.getvalue(), mime_type="image/png",
                                    description="Logo du syndicat", focus=(0.0, 0.5),
                                    file_name="logo.png")
    assert media.type == "image" and media.url and media.description == "Logo du syndicat"
    assert media.meta.original.width == 300 and media.meta.small.size == "300x200"
    updated = await asyncio.to_thread(m.media_update, media, description="Logo vert")
    assert updated.description == "Logo vert"
    again = await asyncio.to_thread(m.media, media.id)
    assert again.description == "Logo vert" and again.url == media.url
    with pytest.raises(mastodon.MastodonAPIError) as info:
        await asyncio.to_thread(m.media_post, b"pas une image", mime_type="image/png")
    assert "could not be verified" in str(info.value)
