"""Files, templates and photos across real instances: upload → folder → resource on A,
federated to a member instance B (Document + the public coop's Note), served by
/media/{key} with safe headers, private coops' media readable only by members, a
Mobilizon-shaped remote Document, and attachments of news posts."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from aiohttp import ClientSession
from PIL import Image
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.follows import follow
from t3r1_fed.context import Context
from t3r1_fed.coops.membership import approve
from t3r1_fed.coops.posting import local_post
from t3r1_fed.coops.resources import (
    ResourceError,
    create_folder,
    delete_resource,
    list_folders,
    list_photos,
    list_resources,
    upload_resource,
)
from t3r1_fed.db.models import Actor, Object
from t3r1_fed.db.models_coops import Media, Resource, ResourceFolder
from t3r1_fed.media.attach import AttachmentError, publish_news_with_media
from t3r1_fed.media.upload import upload
from tests.conftest import StartInstance
from tests.integration.test_cli import t3r1
from tests.integration.test_federation import is_state
from tests.peer import Peer, PeerActor, wait_received
from tests.testrig import Databases, Instance, eventually

pytestmark = pytest.mark.federation

AS = "https://www.w3.org/ns/activitystreams"
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def png(w: int = 640, h: int = 480) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


async def actor_row(s: AsyncSession, uri: str) -> Actor:
    return (await s.execute(select(Actor).where(Actor.uri == uri))).scalar_one()


async def add_file(inst: Instance, user: str, coop: str, data: bytes, **kw: Any) -> tuple[
    str, str
]:
    """Upload as `user` into `coop`; returns (object uri, media key)."""

    async def go(ctx: Context, s: AsyncSession) -> tuple[str, str]:
        folder_name = kw.pop("folder", None)
        author, group = await actor_row(s, user), await actor_row(s, coop)
        folder = None
        if folder_name:
            folder = (await s.execute(select(ResourceFolder).where(
                ResourceFolder.name == folder_name))).scalar()
            folder = folder or await create_folder(ctx, s, author, group, folder_name)
        obj, media = await upload_resource(ctx, s, author, group, data, folder=folder, **kw)
        return obj.uri, media.key

    return await inst.run(go)


async def fetch(url: str, signer: PeerActor | None = None) -> tuple[int, dict[str, str], bytes]:
    headers = signer.signed("GET", url) if signer else {}
    async with ClientSession() as http, http.get(url, headers=headers) as r:
        return r.status, dict(r.headers), await r.read()


async def get_json(url: str) -> Any:
    async with ClientSession() as http, http.get(
        url, headers={"Accept": "application/activity+json"}
    ) as r:
        assert r.status == 200, (url, r.status)
        return await r.json(content_type=None)


async def remote_media(inst: Instance, obj_uri: str) -> list[Media]:
    async with inst.session() as s:
        q = select(Media).join(Object, Object.id == Media.object_id).where(Object.uri == obj_uri)
        return list((await s.execute(q)).scalars())


async def test_public_coop_resources_federate(instances: StartInstance) -> None:
    a = await instances("127.0.0.2")
    b = await instances("127.0.0.3")
    alice = await a.create_user("alice")
    coop = await a.create_coop("syndic", "alice")
    bob = await b.create_user("bob")

    async def bob_joins(ctx: Context, s: AsyncSession) -> None:
        await follow(ctx, s, "bob", f"syndic@{a.domain}")

    await b.run(bob_joins)
    await eventually(lambda: is_state(b, bob, coop, "accepted"), what="bob is a member")
    peer = await Peer("127.0.0.5").start()
    try:
        masto = peer.actor("masto")
        fol = {"@context": AS, "id": f"{peer.base}/activities/f1", "type": "Follow",
               "actor": masto.id, "object": coop}
        assert (await masto.post(f"{a.base}/inbox", fol))[0] == 202
        await wait_received(peer, 1, "Accept")

        # a leaflet in a folder, with a hostile file name; and a photo
        doc_uri, pdf_key = await add_file(
            a, alice, coop, PDF, filename="../../etc/tract\x00.pdf", name="Tract du 1er mai",
            category="leaflet", folder="Tracts",
        )
        photo_uri, png_key = await add_file(a, alice, coop, png(), filename="manif.jpg",
                                            category="photo", description="La manif")

        # A serves the files: right bytes, detected type, nosniff, safe disposition
        status, headers, body = await fetch(f"{a.base}/media/{pdf_key}")
        assert status == 200 and body == PDF
        assert headers["Content-Type"] == "application/pdf"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Content-Disposition"].startswith('attachment; filename="tract.pdf"')
        assert "public" in headers["Cache-Control"]
        stored = a.settings.media_dir / pdf_key[:2] / pdf_key
        assert stored.read_bytes() == PDF and pdf_key.endswith(".pdf")
        assert not any(p.name.startswith("tract") for p in a.settings.data_dir.rglob("*"))
        status, headers, body = await fetch(f"{a.base}/media/{png_key}")
        assert status == 200 and headers["Content-Type"] == "image/png"
        assert headers["Content-Disposition"].startswith("inline")
        with Image.open(io.BytesIO(body)) as img:
            assert img.size == (640, 480)
        status, headers, body = await fetch(f"{a.base}/media/{png_key}/thumb")
        assert status == 200 and headers["Content-Type"] == "image/webp"
        with Image.open(io.BytesIO(body)) as thumb:
            assert max(thumb.size) == 400
        assert (await fetch(f"{a.base}/media/{pdf_key}/thumb"))[0] == 404
        assert (await fetch(f"{a.base}/media/{'0' * 32}.pdf"))[0] == 404
        assert (await fetch(f"{a.base}/media/..%2F..%2Finstance.toml"))[0] == 404

        # the Document (Mobilizon shape) and the resources collection
        doc = await get_json(doc_uri)
        assert doc["type"] == "Document" and doc["name"] == "Tract du 1er mai"
        assert doc["url"] == f"{a.base}/media/{pdf_key}"
        assert doc["mediaType"] == "application/pdf" and doc["category"] == "leaflet"
        assert (await get_json(photo_uri))["type"] == "Image"
        group_doc = await get_json(coop)
        assert group_doc["resources"] == f"{coop}/resources"
        page = await get_json(f"{coop}/resources?page=true")
        assert [o["id"] for o in page["orderedItems"]] == [photo_uri, doc_uri]
        folder = await get_json(doc["context"])
        assert folder["type"] == "ResourceCollection" and folder["name"] == "Tracts"
        assert folder["totalItems"] == 1 and folder["attributedTo"] == coop
        assert [o["id"] for o in (await get_json(folder["first"]))["orderedItems"]] == [doc_uri]
        filtered = await get_json(f"{coop}/resources?page=true&folder={quote(folder['id'])}")
        assert [o["id"] for o in filtered["orderedItems"]] == [doc_uri]

        # A's service API: listings and the photo library
        async def listed(ctx: Context, s: AsyncSession) -> tuple[list[str], list[str], int]:
            group = await actor_row(s, coop)
            photos = await list_photos(ctx, s, group)
            assert photos[0].thumbnail_url == f"{a.base}/media/{png_key}/thumb"
            return ([r.name for r in await list_resources(ctx, s, group)],
                    [p.uri for p in photos], len(await list_folders(s, group)))

        assert await a.run(listed) == (["manif.jpg", "Tract du 1er mai"], [photo_uri], 1)

        # B stores the Document as a resource of A's coop, in its folder, with the file
        # referenced (never fetched), and the announcing Note with its attachment
        async def b_resource(ctx: Context, s: AsyncSession) -> Any:
            q = (select(Resource.category, ResourceFolder.name)
                 .join(Object, Object.id == Resource.object_id)
                 .outerjoin(ResourceFolder, ResourceFolder.id == Resource.folder_id)
                 .where(Object.uri == doc_uri))
            return (await s.execute(q)).first()

        found = await eventually(lambda: b.run(b_resource), what="B stored the resource")
        assert tuple(found) == ("leaflet", "Tracts")
        refs = await remote_media(b, doc_uri)
        assert [(m.remote_url, m.media_type) for m in refs] == [
            (f"{a.base}/media/{pdf_key}", "application/pdf")
        ]
        assert not (b.settings.media_dir).exists() or not any(b.settings.media_dir.rglob("*.*"))

        async def b_note(ctx: Context, s: AsyncSession) -> Any:
            q = (select(Object.uri).join(Media, Media.object_id == Object.id)
                 .where(Object.type == "Note", Media.remote_url == f"{a.base}/media/{png_key}"))
            return (await s.execute(q)).scalar()

        note_uri = await eventually(lambda: b.run(b_note), what="B stored the Note")

        # Mastodon-like follower: one boost per file, of the Note, never of the Document
        async def boosts() -> list[Any]:
            return [x["object"] for x in peer.activities("Announce")
                    if isinstance(x["object"], str)]

        await eventually(lambda: _count(boosts, 2), what="two boosts")
        boosted = await boosts()
        assert doc_uri not in boosted and photo_uri not in boosted and note_uri in boosted
        note = await get_json(note_uri)
        assert note["attachment"][0]["url"] == f"{a.base}/media/{png_key}"
        assert note["attachment"][0]["name"] == "La manif"
        assert (note["attachment"][0]["width"], note["attachment"][0]["height"]) == (640, 480)
        assert len(note["attachment"][0]["blurhash"]) == 28

        # the author deletes the leaflet: Document and its Note gone here and on B, file gone
        async def pdf_note(ctx: Context, s: AsyncSession) -> str:
            q = select(Object.uri).where(Object.type == "Note",
                                         Object.raw.contains(f"/media/{pdf_key}"))
            return (await s.execute(q)).scalar_one()

        pdf_note_uri = await a.run(pdf_note)

        async def remove(ctx: Context, s: AsyncSession) -> None:
            await delete_resource(ctx, s, await actor_row(s, alice), doc_uri)

        await a.run(remove)
        assert (await fetch(f"{a.base}/media/{pdf_key}"))[0] == 404
        assert not stored.exists()
        assert (await fetch(doc_uri))[0] == 410 and (await fetch(pdf_note_uri))[0] == 410
        assert (await fetch(f"{a.base}/media/{png_key}"))[0] == 200

        async def gone_on_b(ctx: Context, s: AsyncSession) -> bool:
            q = select(Object.deleted_at).where(Object.uri == doc_uri)
            return (await s.execute(q)).scalar() is not None

        await eventually(lambda: b.run(gone_on_b), what="B applied the Delete")
        with pytest.raises(ResourceError):
            await a.run(remove)
    finally:
        await peer.stop()


async def _count(fn: Any, n: int) -> bool:
    return len(await fn()) >= n


async def test_private_coop_media_only_for_members(instances: StartInstance) -> None:
    a = await instances("127.0.0.2")
    alice = await a.create_user("alice")
    coop = await a.create_coop("secret", "alice", openness="moderated", private=True)
    peer = await Peer("127.0.0.5").start()
    try:
        mona, eve = peer.actor("mona"), peer.actor("eve", key_index=1)
        fol = {"@context": AS, "id": f"{peer.base}/activities/f1", "type": "Follow",
               "actor": mona.id, "object": coop}
        assert (await mona.post(f"{a.base}/inbox", fol))[0] == 202
        await eventually(lambda: is_state(a, mona.id, coop, "pending"), what="request")

        async def accept(ctx: Context, s: AsyncSession) -> None:
            await approve(ctx, s, await actor_row(s, alice), await actor_row(s, coop),
                          await actor_row(s, mona.id))

        await a.run(accept)
        doc_uri, key = await add_file(a, alice, coop, png(64, 64), category="photo")
        url = f"{a.base}/media/{key}"
        assert (await fetch(url))[0] == 404  # anonymous
        assert (await fetch(f"{url}/thumb"))[0] == 404
        await eve.post(f"{a.base}/inbox", {"@context": AS, "id": f"{peer.base}/x/1",
                                           "type": "Like", "actor": eve.id, "object": doc_uri})
        assert (await fetch(url, eve))[0] == 404  # signed, not a member
        status, headers, body = await fetch(url, mona)  # signed member
        assert status == 200 and headers["Content-Type"] == "image/png"
        assert headers["Cache-Control"].startswith("private")
        assert (await fetch(f"{url}/thumb", mona))[0] == 200
        assert (await fetch(f"{coop}/resources?page=true"))[0] == 404
        status, _, body = await fetch(f"{coop}/resources?page=true", mona)
        assert status == 200 and doc_uri.encode() in body
        # a private coop sends no Note: only the Document exists
        async with a.session() as s:
            kinds = (await s.execute(select(Object.type).where(Object.group_id.is_not(None))))
            assert sorted(kinds.scalars()) == ["Image"]
    finally:
        await peer.stop()


async def test_mobilizon_document_and_news_attachments(instances: StartInstance) -> None:
    a = await instances("127.0.0.2")
    alice = await a.create_user("alice")
    carol = await a.create_user("carol")
    coop = await a.create_coop("syndic", "alice")
    peer = await Peer("127.0.0.5").start()
    try:
        # A Mobilizon group sends a resource: attributedTo the group, `actor` the creator,
        # `context` a folder (ResourceCollection), `url` a plain link to the file
        grp = peer.actor("collectif", type_="Group")
        creator = peer.actor("zoe", key_index=1)
        folder_uri = f"{peer.base}/objects/folder1"
        peer.objects[folder_uri] = {"@context": AS, "id": folder_uri,
                                    "type": "ResourceCollection", "name": "Affiches",
                                    "attributedTo": grp.id, "actor": creator.id,
                                    "context": f"{grp.id}/resources"}
        doc_uri = f"{peer.base}/objects/doc1"
        doc = {"@context": AS, "id": doc_uri, "type": "Document", "name": "Affiche grève",
               "attributedTo": grp.id, "actor": creator.id, "context": folder_uri,
               "url": f"{peer.base}/files/affiche.pdf", "to": [alice]}
        peer.objects[doc_uri] = doc
        create = {"@context": AS, "id": f"{peer.base}/activities/c1", "type": "Create",
                  "actor": grp.id, "object": doc, "to": [alice]}
        assert (await grp.post(f"{a.base}/inbox", create))[0] == 202

        async def mz(ctx: Context, s: AsyncSession) -> Any:
            q = (select(Resource.category, ResourceFolder.name, Media.remote_url)
                 .join(Object, Object.id == Resource.object_id)
                 .join(Media, Media.object_id == Object.id)
                 .outerjoin(ResourceFolder, ResourceFolder.id == Resource.folder_id)
                 .where(Object.uri == doc_uri))
            return (await s.execute(q)).first()

        got = await eventually(lambda: a.run(mz), what="Mobilizon resource stored")
        assert tuple(got) == ("other", "Affiches", f"{peer.base}/files/affiche.pdf")

        # news post with attachments: uploads of the author, not yet attached, at most 4
        async def uploads(ctx: Context, s: AsyncSession) -> list[int]:
            owner = await actor_row(s, alice)
            ids = [(await upload(ctx, s, owner, png(20 + i, 20), description=f"alt {i}")).id
                   for i in range(5)]
            other = await upload(ctx, s, await actor_row(s, carol), PDF)
            return [*ids, other.id]

        ids = await a.run(uploads)
        for bad in (ids[:5], [ids[5]]):
            async def refused(ctx: Context, s: AsyncSession, bad: list[int] = bad) -> None:
                await local_post(ctx, s, "alice", "syndic", "Photos", media_ids=bad)

            with pytest.raises(AttachmentError):
                await a.run(refused)

        async def post(ctx: Context, s: AsyncSession) -> str:
            obj = await local_post(ctx, s, "alice", "syndic", "Photos de la manif",
                                   media_ids=ids[:2])
            return obj.uri

        note_uri = await a.run(post)
        note = await get_json(note_uri)
        assert [x["name"] for x in note["attachment"]] == ["alt 0", "alt 1"]
        assert note["attachment"][0]["type"] == "Image"
        async with a.session() as s:
            linked = (await s.execute(select(Media.id).join(Object, Object.id == Media.object_id)
                                      .where(Object.uri == note_uri))).scalars()
            assert sorted(linked) == ids[:2]

        async def again(ctx: Context, s: AsyncSession) -> None:
            await local_post(ctx, s, "alice", "syndic", "Encore", media_ids=ids[:1])

        with pytest.raises(AttachmentError, match="already attached"):
            await a.run(again)

        async def news(ctx: Context, s: AsyncSession) -> list[Any]:
            row = await publish_news_with_media(ctx, s, await actor_row(s, alice), "syndic",
                                                "Un **article**", title="Affiches",
                                                markdown=True, media_ids=[ids[2]])
            media = await s.get(Media, ids[2])
            assert media is not None and media.object_id == row.id
            return list(orjson.loads(row.raw)["attachment"])

        assert [x["name"] for x in await a.run(news)] == ["alt 2"]

        async def not_member(ctx: Context, s: AsyncSession) -> None:
            await upload_resource(ctx, s, await actor_row(s, carol), await actor_row(s, coop),
                                  PDF)

        with pytest.raises(ResourceError):
            await a.run(not_member)
    finally:
        await peer.stop()


@pytest.fixture
async def cli_db(databases: Databases, backend: str) -> str | None:
    return None if backend == "sqlite" else await databases.get(backend)


async def test_cli_admin_upload(tmp_path: Path, cli_db: str | None) -> None:
    data = tmp_path / "data"
    assert t3r1(data, "init", "--domain", "syndicat.example", db=cli_db).returncode == 0
    assert t3r1(data, "admin", "create-user", "alice", "--password", "secret-pass",
                db=cli_db).returncode == 0
    assert t3r1(data, "admin", "create-coop", "syndic", "--owner", "alice",
                db=cli_db).returncode == 0
    photo = tmp_path / "photo.pdf"  # a PNG with a misleading name
    photo.write_bytes(png(50, 40))
    r = t3r1(data, "admin", "upload", "alice", "syndic", str(photo), "--folder", "Manifs",
             "--category", "photo", db=cli_db)
    assert r.returncode == 0, r.stderr
    uri, media_type, url = r.stdout.strip().split("\t")
    assert uri.startswith("https://syndicat.example/o/") and media_type == "image/png"
    key = url.rsplit("/", 1)[1]
    assert key.endswith(".png") and (data / "media" / key[:2] / key).is_file()
    junk = tmp_path / "tract.pdf"
    junk.write_bytes(b"MZ\x90\x00 not a pdf")
    r = t3r1(data, "admin", "upload", "alice", "syndic", str(junk), db=cli_db)
    assert r.returncode == 2 and "unsupported file type" in r.stderr
