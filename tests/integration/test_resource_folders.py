"""Folders (`ResourceCollection`) federate: created on A (nested), sent as the member's
`Create` announced by the cooperative, stored with their parents on a member instance B;
Mobilizon-shaped folders (`Add` of a folder into a folder, announced by the group) from a
peer, with cycles, forgeries and over-deep chains of parents."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.follows import follow
from t3r1_fed.context import Context
from t3r1_fed.coops.resources import (
    MAX_FOLDER_DEPTH,
    ResourceError,
    create_folder,
    upload_resource,
)
from t3r1_fed.db.models import Activity, Actor, InboxItem, Object
from t3r1_fed.db.models_coops import Resource, ResourceFolder
from tests.conftest import StartInstance
from tests.integration.test_federation import is_state
from tests.integration.test_resources import PDF
from tests.peer import Peer, PeerActor, wait_received
from tests.testrig import Instance, eventually

pytestmark = pytest.mark.federation
AS = "https://www.w3.org/ns/activitystreams"


async def actor_row(s: AsyncSession, uri: str) -> Actor:
    return (await s.execute(select(Actor).where(Actor.uri == uri))).scalar_one()


async def folders(inst: Instance) -> dict[str, tuple[str, str | None, str]]:
    """uri → (name, parent uri, owning group uri) of every folder stored on `inst`."""
    async with inst.session() as s:
        rows = (await s.execute(select(ResourceFolder))).scalars().all()
        by_id = {f.id: f for f in rows}
        owners = {i: u for i, u in (await s.execute(select(Actor.id, Actor.uri))).all()}
    return {
        f.uri: (f.name, by_id[f.parent_id].uri if f.parent_id else None, owners[f.coop_actor_id])
        for f in rows
    }


async def processed(inst: Instance, activity_id: str) -> tuple[str, str] | None:
    async with inst.session() as s:
        row = (await s.execute(select(InboxItem.state, InboxItem.result)
                               .where(InboxItem.activity_uri == activity_id))).first()
    return (row[0], row[1] or "") if row is not None and row[0] != "pending" else None


async def test_nested_folders_federate_to_a_member_instance(instances: StartInstance) -> None:
    a = await instances("127.0.0.2")
    b = await instances("127.0.0.3")
    alice = await a.create_user("alice")
    coop = await a.create_coop("syndic", "alice")
    bob = await b.create_user("bob")

    async def bob_joins(ctx: Context, s: AsyncSession) -> None:
        await follow(ctx, s, "bob", f"syndic@{a.domain}")

    await b.run(bob_joins)
    await eventually(lambda: is_state(b, bob, coop, "accepted"), what="bob is a member")

    async def make(ctx: Context, s: AsyncSession) -> tuple[str, str, str, str]:
        author, group = await actor_row(s, alice), await actor_row(s, coop)
        top = await create_folder(ctx, s, author, group, "Tracts")
        mid = await create_folder(ctx, s, author, group, "2026", parent=top)
        low = await create_folder(ctx, s, author, group, "Mai", parent=mid)
        doc, _ = await upload_resource(ctx, s, author, group, PDF, name="Tract", folder=low)
        return top.uri, mid.uri, low.uri, doc.uri

    top, mid, low, doc = await a.run(make)

    # A sent alice's Create{ResourceCollection} (Mobilizon's shape) and the group's Announce
    async with a.session() as s:
        bodies = [orjson.loads(x) for x in (await s.execute(
            select(Activity.body).where(Activity.type.in_(["Create", "Announce"]))
        )).scalars()]
    creates = {x["object"]["id"]: x for x in bodies if x["type"] == "Create"
               and x["object"].get("type") == "ResourceCollection"}
    assert set(creates) == {top, mid, low}
    sent = creates[mid]
    assert sent["actor"] == alice and sent["object"]["actor"] == alice
    assert sent["object"]["attributedTo"] == coop and sent["object"]["name"] == "2026"
    assert sent["object"]["context"] == top
    assert creates[top]["object"]["context"] == f"{coop}/resources"
    announced = [x for x in bodies if x["type"] == "Announce" and x["actor"] == coop
                 and isinstance(x["object"], dict) and x["object"]["id"] == sent["id"]]
    assert len(announced) == 1

    # B stores the three folders, nested, in A's cooperative, and the file in the deepest
    async def all_three() -> dict[str, tuple[str, str | None, str]] | None:
        got = await folders(b)
        return got if len(got) == 3 else None

    got = await eventually(all_three, what="B stored the folders")
    assert got == {top: ("Tracts", None, coop), mid: ("2026", top, coop),
                   low: ("Mai", mid, coop)}

    async def b_resource(ctx: Context, s: AsyncSession) -> Any:
        q = (select(ResourceFolder.uri).join(Resource, Resource.folder_id == ResourceFolder.id)
             .join(Object, Object.id == Resource.object_id).where(Object.uri == doc))
        return (await s.execute(q)).scalar()

    assert await eventually(lambda: b.run(b_resource), what="B filed the file") == low
    async with b.session() as s:
        results = [r for (r,) in (await s.execute(
            select(InboxItem.result).where(InboxItem.result.like("folder%")))).all()]
    assert results and all((r or "").startswith(("folder stored", "folder already known"))
                           for r in results), results

    # nesting is bounded where folders are made
    async def too_deep(ctx: Context, s: AsyncSession) -> None:
        author, group = await actor_row(s, alice), await actor_row(s, coop)
        parent = None
        for i in range(MAX_FOLDER_DEPTH):
            parent = await create_folder(ctx, s, author, group, f"n{i}", parent=parent)
        with pytest.raises(ResourceError, match="at most"):
            await create_folder(ctx, s, author, group, "one too many", parent=parent)

    await a.run(too_deep)


async def accepted_by(inst: Instance, peer: Peer, group: PeerActor) -> None:
    follow_doc = next(f for f in await wait_received(peer, 1, "Follow")
                      if f["object"] == group.id)
    accept: dict[str, Any] = {"@context": AS, "id": f"{group.id}/accepts/1", "type": "Accept",
              "actor": group.id, "object": follow_doc}
    assert (await group.post(f"{inst.base}/inbox", accept))[0] == 202
    state = await eventually(lambda: processed(inst, accept["id"]), what="Accept processed")
    assert state == ("done", "follow accepted"), state


async def test_mobilizon_shaped_folders_from_a_group(instances: StartInstance) -> None:
    b = await instances("127.0.0.3")
    await b.create_user("bob")
    peer = await Peer("127.0.0.5").start()
    try:
        grp = peer.actor("collectif", type_="Group")
        other = peer.actor("autre", key_index=1, type_="Group")
        zoe = peer.actor("zoe", key_index=2)
        resources = f"{grp.id}/resources"

        def folder(oid: str, name: str, context: str, owner: str = grp.id) -> dict[str, Any]:
            uri = f"{peer.base}/objects/{oid}"
            peer.objects[uri] = {"@context": AS, "id": uri, "type": "ResourceCollection",
                                 "name": name, "attributedTo": owner, "actor": zoe.id,
                                 "context": context}
            return peer.objects[uri]

        async def bob_follows(ctx: Context, s: AsyncSession) -> None:
            await follow(ctx, s, "bob", grp.id)

        await b.run(bob_follows)
        await accepted_by(b, peer, grp)

        n = 0

        async def announce(inner: dict[str, Any]) -> tuple[str, str]:
            nonlocal n
            n += 1
            doc: dict[str, Any] = {"@context": AS, "id": f"{peer.base}/activities/announce/{n}",
                   "type": "Announce", "actor": grp.id, "to": [f"{grp.id}/members"],
                   "object": inner}
            assert (await grp.post(f"{b.base}/inbox", doc))[0] == 202
            return await eventually(lambda: processed(b, doc["id"]), what=f"announce {n}")

        # Mobilizon: a folder inside a folder is `Add{object, target: parent}`; the parent
        # is unknown here and fetched from the group's host.
        parent = folder("p1", "Affiches", resources)
        child = folder("c1", "Grève", parent["id"])
        add = {"id": f"{peer.base}/activities/add/1", "type": "Add", "actor": zoe.id,
               "object": {k: v for k, v in child.items() if k != "@context"},
               "target": parent["id"], "to": [f"{grp.id}/members"]}
        assert await announce(add) == ("done", "folder stored in its parent")
        assert await folders(b) == {parent["id"]: ("Affiches", None, grp.id),
                                    child["id"]: ("Grève", parent["id"], grp.id)}
        # the Create of the parent, arriving late, changes nothing
        create = {"id": f"{peer.base}/activities/create/1", "type": "Create", "actor": zoe.id,
                  "object": {k: v for k, v in parent.items() if k != "@context"}}
        assert await announce(create) == ("done", "folder already known")

        # a relayed copy is trusted only on the group's host, and must be the group's:
        # a folder of another group, or one on another host (refetched there: nothing
        # lets the group vouch for it), is refused
        forged = folder("f1", "Pas à vous", resources, owner=other.id)
        state, why = await announce({**create, "id": f"{peer.base}/activities/create/2",
                                     "object": {k: v for k, v in forged.items()
                                                if k != "@context"}})
        assert state == "ignored" and "not a folder of this group" in why
        ghost = {"id": f"{b.base}/c/nothing/resources/1", "type": "ResourceCollection",
                 "name": "Fantôme", "attributedTo": grp.id, "context": resources}
        state, why = await announce({**create, "id": f"{peer.base}/activities/create/3",
                                     "object": ghost})
        assert state == "ignored" and "not a folder of this group" in why, why

        # a cycle of parents is stored once each, without looping
        folder("x", "X", f"{peer.base}/objects/y")
        y = folder("y", "Y", f"{peer.base}/objects/x")
        state, why = await announce({**create, "id": f"{peer.base}/activities/create/4",
                                     "object": {k: v for k, v in y.items() if k != "@context"}})
        assert state == "done", why
        got = await folders(b)
        assert {got[f"{peer.base}/objects/x"][0], got[f"{peer.base}/objects/y"][0]} == {"X", "Y"}

        # a chain deeper than MAX_FOLDER_DEPTH: the deepest levels are kept, the last
        # reachable one filed at the top
        chain = [folder("d0", "d0", resources)]
        for i in range(1, MAX_FOLDER_DEPTH + 2):
            chain.append(folder(f"d{i}", f"d{i}", chain[-1]["id"]))
        deepest = chain[-1]
        state, why = await announce({**create, "id": f"{peer.base}/activities/create/5",
                                     "object": {k: v for k, v in deepest.items()
                                                if k != "@context"}})
        assert state == "done", why
        got = await folders(b)
        kept = [c["id"] for c in chain if c["id"] in got]
        assert kept == [c["id"] for c in chain[-MAX_FOLDER_DEPTH:]]
        assert got[kept[0]][1] is None and got[kept[1]][1] == kept[0]

        # sent directly by the group (not announced): stored the same way
        direct = folder("dir1", "Direct", resources)
        doc: dict[str, Any] = {
            "@context": AS, "id": f"{peer.base}/activities/create/6", "type": "Create",
            "actor": grp.id, "object": {k: v for k, v in direct.items() if k != "@context"}}
        assert (await grp.post(f"{b.base}/inbox", doc))[0] == 202
        assert await eventually(lambda: processed(b, doc["id"]), what="direct") == (
            "done", "folder stored")
        # … but not for a group nobody here follows
        lone = folder("lone", "Seul", f"{other.id}/resources", owner=other.id)
        doc2 = {**doc, "id": f"{peer.base}/activities/create/7", "actor": other.id,
                "object": {k: v for k, v in lone.items() if k != "@context"}}
        assert (await other.post(f"{b.base}/inbox", doc2))[0] == 202
        state, why = await eventually(lambda: processed(b, doc2["id"]), what="lone")
        assert state == "ignored" and ("nobody here follows" in why or "unknown" in why), why
        assert lone["id"] not in await folders(b)
    finally:
        await peer.stop()
