"""The project's own fixtures (tests/fixtures/*.json: shapes the real-world samples lack —
Mobilizon ResourceCollection/Document/Member/Invite, FEP-400e Add, a Mastodon Question)
through the inbox worker of a real instance, as tests/integration/test_ingest_samples.py
does for the samples: written into `inbox_items`, drained, and the resulting rows checked.

The instance cannot reach the fixtures' hosts (every fetch is refused), so what is stored
comes from the activities themselves and the actors cached beforehand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from t3r1_fed.db.models import Actor, Follow, Object
from t3r1_fed.db.models_coops import (
    Invite,
    Media,
    Poll,
    PollOption,
    Resource,
    ResourceFolder,
)
from t3r1_fed.federation.resolver import store_actor
from t3r1_fed.vocab.normalize import parse_actor
from tests.conftest import StartInstance
from tests.integration.test_ingest_samples import ingest, offline_instance
from tests.testrig import Instance

pytestmark = pytest.mark.federation

FIXTURES = Path(__file__).parent.parent / "fixtures"
MZ = "https://mobilizon.example"
COLLECTIF, ZOE = f"{MZ}/@collectif", f"{MZ}/@zoe"
JURISTES, ANA = "https://groups.example/c/juristes", "https://groups.example/users/ana"
ROSA = "https://mastodon.example/users/rosa"


def fixture(name: str, inst: Instance) -> dict[str, Any]:
    text = (FIXTURES / name).read_text().replace("https://LOCAL", inst.base)
    doc = json.loads(text)
    assert isinstance(doc, dict)
    return doc


async def cache_actor(inst: Instance, uri: str, type_: str, **extra: str) -> int:
    """A remote actor as if fetched earlier (no fetch), with its collections."""
    name = uri.rstrip("/").rsplit("/", 1)[-1].lstrip("@")
    doc = {"id": uri, "type": type_, "preferredUsername": name, "inbox": f"{uri}/inbox",
           "outbox": f"{uri}/outbox", "followers": f"{uri}/followers", **extra}

    async def go(ctx: Any, s: Any) -> int:
        return (await store_actor(s, parse_actor(doc), doc)).id

    return await inst.run(go)


async def setup(instances: StartInstance) -> tuple[Instance, str]:
    inst, _ = await offline_instance(instances)
    alice = await inst.create_user("alice")
    follows = [
        await cache_actor(inst, COLLECTIF, "Group", resources=f"{COLLECTIF}/resources",
                          members=f"{COLLECTIF}/members"),
        await cache_actor(inst, ZOE, "Person"),
        await cache_actor(inst, JURISTES, "Group", faq=f"{JURISTES}/faq",
                          featured=f"{JURISTES}/featured"),
        await cache_actor(inst, ANA, "Person"),
        await cache_actor(inst, ROSA, "Person"),
    ]
    async with inst.session() as s, s.begin():
        me = (await s.execute(select(Actor.id).where(Actor.uri == alice))).scalar_one()
        for n, followee in enumerate(follows):
            s.add(Follow(uri=f"{alice}/follows/{n}", follower_id=me, followee_id=followee,
                         state="accepted"))
    return inst, alice


async def test_mobilizon_folder_and_document(instances: StartInstance) -> None:
    inst, _ = await setup(instances)
    announce = fixture("mobilizon_announce_create_resource_collection.json", inst)
    folder_uri = announce["object"]["object"]["id"]
    assert await ingest(inst, announce) == ("done", "folder stored")
    create = fixture("mobilizon_create_document.json", inst)
    state, result = await ingest(inst, create)
    assert state == "done" and result.startswith("stored Document"), result

    async with inst.session() as s:
        folder = (await s.execute(select(ResourceFolder))).scalar_one()
        owner = await s.get(Actor, folder.coop_actor_id)
        q = (select(Resource.category, ResourceFolder.uri, Media.remote_url, Object.name)
             .join(Object, Object.id == Resource.object_id)
             .join(Media, Media.object_id == Object.id)
             .outerjoin(ResourceFolder, ResourceFolder.id == Resource.folder_id)
             .where(Object.uri == create["object"]["id"]))
        row = (await s.execute(q)).one()
    assert (folder.uri, folder.name, folder.parent_id) == (folder_uri, "Affiches", None)
    assert owner is not None and owner.uri == COLLECTIF
    assert tuple(row) == ("other", folder_uri, "https://files.mobilizon.example/affiche-greve-5.pdf",
                          "Affiche grève du 5")
    # the same announce again: nothing new
    again = {**announce, "id": announce["id"] + "/again"}
    assert await ingest(inst, again) == ("done", "folder already known")


async def test_mobilizon_member_is_ignored_and_invite_stored(instances: StartInstance) -> None:
    inst, alice = await setup(instances)
    state, result = await ingest(inst, fixture("mobilizon_update_member.json", inst))
    # Roles live on the group's side (GROUPS.md: no FEP standardises them): recorded, unused.
    assert state == "ignored" and "Member" in result, result  # "unsupported: Update/Member"

    invite = fixture("mobilizon_invite.json", inst)
    assert await ingest(inst, invite) == ("done", "invitation stored")
    async with inst.session() as s:
        inv = (await s.execute(select(Invite))).scalar_one()
        names = {i: u for i, u in (await s.execute(select(Actor.id, Actor.uri))).all()}
    assert inv.uri == invite["id"] and inv.state == "pending"
    assert (names[inv.coop_actor_id], names[inv.inviter_id], names[inv.invitee_id]) == (
        COLLECTIF, ZOE, alice)


async def test_fep400e_add_files_the_faq_entry(instances: StartInstance) -> None:
    inst, _ = await setup(instances)
    create = fixture("fep400e_create_article.json", inst)
    entry = create["object"]["id"]
    state, result = await ingest(inst, create)
    assert state == "done" and result.startswith("stored Article"), result
    async with inst.session() as s:
        before = (await s.execute(select(Object.kind).where(Object.uri == entry))).scalar_one()
    assert before != "faq"  # only the owner's Add files it
    assert await ingest(inst, fixture("fep400e_add.json", inst)) == ("done", "faq entry added")
    async with inst.session() as s:
        row = (await s.execute(select(Object).where(Object.uri == entry))).scalar_one()
        group = await s.get(Actor, row.group_id)
    assert row.kind == "faq" and row.position == 1 and row.removed_at is None
    assert group is not None and group.uri == JURISTES
    assert row.name == "Peut-on faire grève pendant une période d'essai ?"


async def test_mastodon_question_options_and_counts(instances: StartInstance) -> None:
    inst, _ = await setup(instances)
    create = fixture("mastodon_create_question.json", inst)
    state, result = await ingest(inst, create)
    assert (state, result) == ("done", "stored Question"), result
    async with inst.session() as s:
        obj = (await s.execute(select(Object).where(Object.uri == create["object"]["id"]))
               ).scalar_one()
        poll = await s.get(Poll, obj.id)
        options = (await s.execute(select(PollOption.name, PollOption.votes)
                                   .where(PollOption.poll_id == obj.id)
                                   .order_by(PollOption.position))).all()
    assert obj.kind == "poll" and poll is not None
    assert [tuple(o) for o in options] == [("Oui", 6), ("Non", 2), ("Je ne sais pas", 1)]
    assert poll.voters_count == 9 and poll.multiple is False
    assert poll.closes_at is not None and poll.closes_at.isoformat().startswith("2026-11-27T11:00")
