"""Folders renamed, moved and deleted (coops/folders.py, inbox/folders.py, cli_folders.py):
driven by `t3r1 admin folder …` on A, seen on a member instance B through the group's
Announce; who may, cycles, the depth cap, recursive deletion; and, from a peer group,
Mobilizon-shaped changes with their origin checks."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.follows import follow
from t3r1_fed.context import Context
from t3r1_fed.coops.folders import move_folder
from t3r1_fed.coops.resources import (
    MAX_FOLDER_DEPTH,
    ResourceError,
    create_folder,
    upload_resource,
)
from t3r1_fed.db.models import Activity, Follow
from t3r1_fed.db.models_coops import Media, ResourceFolder
from tests.conftest import StartInstance
from tests.integration.test_federation import is_state
from tests.integration.test_resource_folders import accepted_by, actor_row, folders, processed
from tests.integration.test_resources import PDF
from tests.integration.test_toolkit_cli import Cli, ok, refused, stored, t3r1  # noqa: F401
from tests.peer import Peer
from tests.testrig import eventually

pytestmark = pytest.mark.federation
AS = "https://www.w3.org/ns/activitystreams"


async def test_rename_move_delete_across_instances(
    instances: StartInstance, t3r1: Cli  # noqa: F811
) -> None:
    a = await instances("127.0.0.2")
    b = await instances("127.0.0.3")
    alice = await a.create_user("alice")
    await a.create_user("dave")
    await a.create_user("carol")
    coop = await a.create_coop("syndic", "alice")
    bob = await b.create_user("bob")

    async def members(ctx: Context, s: AsyncSession) -> None:
        await follow(ctx, s, "dave", f"syndic@{a.domain}")
        await follow(ctx, s, "carol", f"syndic@{a.domain}")

    await a.run(members)

    async def bob_joins(ctx: Context, s: AsyncSession) -> None:
        await follow(ctx, s, "bob", f"syndic@{a.domain}")

    await b.run(bob_joins)
    await eventually(lambda: is_state(b, bob, coop, "accepted"), what="bob is a member")

    async def accepted() -> bool:
        async with a.session() as s:
            return list((await s.execute(select(Follow.state))).scalars()) == ["accepted"] * 3

    await eventually(accepted, what="three members")

    async def make(ctx: Context, s: AsyncSession) -> tuple[str, str, str, str]:
        dave, group = await actor_row(s, f"{a.base}/u/dave"), await actor_row(s, coop)
        tracts = await create_folder(ctx, s, dave, group, "Tracts")
        mai = await create_folder(ctx, s, dave, group, "Mai", parent=tracts)
        archives = await create_folder(ctx, s, await actor_row(s, alice), group, "Archives")
        doc, _ = await upload_resource(ctx, s, dave, group, PDF, name="Tract", folder=mai)
        return tracts.uri, mai.uri, archives.uri, doc.uri

    tracts, mai, archives, doc = await a.run(make)

    async def on_b(expected: dict[str, tuple[str, str | None, str]]) -> bool:
        return await folders(b) == expected

    await eventually(lambda: on_b({tracts: ("Tracts", None, coop), mai: ("Mai", tracts, coop),
                                   archives: ("Archives", None, coop)}), what="folders on B")
    await eventually(lambda: stored(b, doc), what="the file on B")

    # rename: the creator may, another member may not; names stay unique among siblings
    refused(await t3r1(a, "admin", "folder", "rename", "carol", "syndic", "Tracts", "X"),
            "moderators and admins and the folder's creator")
    refused(await t3r1(a, "admin", "folder", "rename", "dave", "syndic", "Tracts", "Archives"),
            "already exists")
    assert ok(await t3r1(a, "admin", "folder", "rename", "dave", "syndic", "Tracts",
                         "Tracts 2026")) == f"renamed: {tracts}\tTracts 2026"
    await eventually(lambda: on_b({tracts: ("Tracts 2026", None, coop),
                                   mai: ("Mai", tracts, coop),
                                   archives: ("Archives", None, coop)}), what="renamed on B")

    # move: Mobilizon's Move, by the creator, into a folder made by someone else
    refused(await t3r1(a, "admin", "folder", "move", "carol", "syndic", tracts,
                       "--to", archives), "may do this")
    assert ok(await t3r1(a, "admin", "folder", "move", "dave", "syndic", tracts,
                         "--to", "Archives")) == f"moved: {tracts} into {archives}"
    async with a.session() as s:
        sent = [orjson.loads(x) for x in (await s.execute(
            select(Activity.body).where(Activity.type == "Move"))).scalars()]
    assert len(sent) == 1
    move = sent[0]
    assert move["actor"] == f"{a.base}/u/dave" and move["target"] == archives
    assert move["origin"] == f"{coop}/resources"
    assert move["object"]["type"] == "ResourceCollection"
    assert move["object"]["context"] == archives and move["object"]["attributedTo"] == coop
    await eventually(lambda: on_b({tracts: ("Tracts 2026", archives, coop),
                                   mai: ("Mai", tracts, coop),
                                   archives: ("Archives", None, coop)}), what="moved on B")

    # no cycles (into itself or below it), and the depth cap holds
    refused(await t3r1(a, "admin", "folder", "move", "alice", "syndic", "Archives",
                       "--to", "Mai"), "cannot move into itself")
    refused(await t3r1(a, "admin", "folder", "move", "alice", "syndic", "Archives",
                       "--to", "Archives"), "cannot move into itself")

    async def too_deep(ctx: Context, s: AsyncSession) -> None:
        author, group = await actor_row(s, alice), await actor_row(s, coop)
        parent = None
        for i in range(MAX_FOLDER_DEPTH - 2):  # a chain 6 deep: + Archives' 3 levels > 8
            parent = await create_folder(ctx, s, author, group, f"n{i}", parent=parent)
        q = select(ResourceFolder).where(ResourceFolder.uri == archives)
        arch = (await s.execute(q)).scalar_one()
        with pytest.raises(ResourceError, match="at most"):
            await move_folder(ctx, s, author, group, arch, parent)

    await a.run(too_deep)

    # delete: moderators only; a folder with content only recursively
    refused(await t3r1(a, "admin", "folder", "delete", "dave", "syndic", "Mai"),
            "moderators and admins may do this")
    refused(await t3r1(a, "admin", "folder", "delete", "alice", "syndic", "Archives"),
            "not empty")
    assert ok(await t3r1(a, "admin", "folder", "delete", "alice", "syndic", tracts,
                         "--recursive", "--reason", "rangement")) == (
        f"deleted: {tracts} (1 file deleted)")
    row = await stored(a, doc)
    assert row is not None and row.deleted_at is not None
    async with a.session() as s:
        assert (await s.execute(select(Media).where(Media.object_id == row.id))).first() is None
        delete = [orjson.loads(x) for x in (await s.execute(
            select(Activity.body).where(Activity.type == "Delete"))).scalars()
            if tracts in x]
    assert delete and delete[0]["object"]["type"] == "Tombstone"
    assert delete[0]["object"]["formerType"] == "ResourceCollection"

    async def gone_on_b() -> bool:
        got = await folders(b)
        obj = await stored(b, doc)
        return tracts not in got and mai not in got and obj is not None and (
            obj.deleted_at is not None)

    await eventually(gone_on_b, what="deleted on B (with its sub-folder and file)")
    assert archives in await folders(b)
    # the n… chain holds no file, but sub-folders: not empty either
    refused(await t3r1(a, "admin", "folder", "delete", "alice", "syndic", "n0"), "not empty")
    assert ok(await t3r1(a, "admin", "folder", "delete", "alice", "syndic", "Archives")) == (
        f"deleted: {archives}")
    await eventually(lambda: _absent(b, archives), what="empty folder deleted on B")
    refused(await t3r1(a, "admin", "folder", "rename", "alice", "syndic", archives, "Y"),
            "no such folder")


async def _absent(inst: Any, uri: str) -> bool:
    return uri not in await folders(inst)


async def test_folder_changes_from_a_remote_group(instances: StartInstance) -> None:
    b = await instances("127.0.0.3")
    await b.create_user("bob")
    peer = await Peer("127.0.0.5").start()
    try:
        grp = peer.actor("collectif", type_="Group")
        other = peer.actor("autre", key_index=1, type_="Group")
        zoe = peer.actor("zoe", key_index=2)
        resources = f"{grp.id}/resources"

        def folder(oid: str, name: str, context: str) -> dict[str, Any]:
            uri = f"{peer.base}/objects/{oid}"
            peer.objects[uri] = {"@context": AS, "id": uri, "type": "ResourceCollection",
                                 "name": name, "attributedTo": grp.id, "actor": zoe.id,
                                 "context": context}
            return {k: v for k, v in peer.objects[uri].items() if k != "@context"}

        async def bob_follows(ctx: Context, s: AsyncSession) -> None:
            await follow(ctx, s, "bob", grp.id)
            await follow(ctx, s, "bob", other.id)

        await b.run(bob_follows)
        await accepted_by(b, peer, grp)
        await accepted_by(b, peer, other)
        n = 0

        async def send(inner: dict[str, Any], by: Any = grp, announce: bool = True
                       ) -> tuple[str, str]:
            nonlocal n
            n += 1
            inner = {"id": f"{peer.base}/activities/{n}", "to": [f"{grp.id}/members"], **inner}
            doc: dict[str, Any] = inner if not announce else {
                "id": f"{peer.base}/activities/announce/{n}", "type": "Announce",
                "actor": by.id, "to": [f"{grp.id}/members"], "object": inner}
            await by.post(f"{b.base}/inbox", {"@context": AS, **doc})
            return await eventually(lambda: processed(b, doc["id"]), what=f"activity {n}")

        one, two = folder("one", "Affiches", resources), folder("two", "Statuts", resources)
        for f in (one, two):
            assert (await send({"type": "Create", "actor": zoe.id, "object": f}))[0] == "done"
        assert set(await folders(b)) == {one["id"], two["id"]}

        # Mobilizon's rename: Update by the member, announced by the group
        got = await send({"type": "Update", "actor": zoe.id, "object": {**one, "name": "Tracts"}})
        assert got == ("done", "folder renamed"), got
        # Mobilizon's move: the object's new context, origin and target
        moved = {**two, "context": one["id"]}
        got = await send({"type": "Move", "actor": zoe.id, "object": moved,
                            "origin": None, "target": one["id"]})
        assert got == ("done", "folder moved"), got
        assert await folders(b) == {one["id"]: ("Tracts", None, grp.id),
                                    two["id"]: ("Statuts", one["id"], grp.id)}

        # origin checks: another group cannot relay changes of grp's folders; a member
        # (not the group) cannot send one directly; a cycle is refused
        state, why = await send({"type": "Update", "actor": zoe.id,
                                 "object": {**one, "name": "Volé"}}, by=other)
        assert state == "ignored" and "not a folder of this group" in why, why
        state, why = await send({"type": "Update", "actor": zoe.id,
                                 "object": {**one, "name": "Direct"}}, by=zoe, announce=False)
        assert state == "ignored" and "from the group only" in why, why
        state, why = await send({"type": "Move", "actor": zoe.id,
                                 "object": {**one, "context": two["id"]}})
        assert state == "ignored" and "cannot move into itself" in why, why
        state, why = await send({"type": "Delete", "actor": zoe.id, "object": one["id"]},
                                by=other)
        assert state == "ignored", why
        assert await folders(b) == {one["id"]: ("Tracts", None, grp.id),
                                    two["id"]: ("Statuts", one["id"], grp.id)}

        # Delete of the parent (a Tombstone, sent by the group itself): both go
        got = await send({"type": "Delete", "actor": grp.id,
                            "object": {"id": one["id"], "type": "Tombstone"}}, announce=False)
        assert got == ("done", "folder deleted (1 sub-folders, 0 files)"), got
        assert await folders(b) == {}
    finally:
        await peer.stop()

