"""The directory on one real instance: opt-in profile fields in the actor document, and
search by name, structure, skill and hashtag, accent-insensitive."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import ClientSession
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.coops import directory
from t3r1_fed.coops.posting import local_post
from t3r1_fed.db.models import Activity, Actor
from t3r1_fed.db.models_coops import ObjectTag
from t3r1_fed.federation.resolver import store_actor
from t3r1_fed.vocab.normalize import parse_actor
from tests.conftest import StartInstance
from tests.peer import test_keypair as keypair
from tests.testrig import Instance

pytestmark = pytest.mark.federation


async def actor(s: AsyncSession, uri: str) -> Actor:
    return (await s.execute(select(Actor).where(Actor.uri == uri))).scalar_one()


async def fields_of(uri: str) -> dict[str, str]:
    async with ClientSession() as http, http.get(
        uri, headers={"Accept": "application/activity+json"}
    ) as r:
        doc = await r.json(content_type=None)
    return {f["name"]: f["value"] for f in doc.get("attachment", [])
            if f.get("type") == "PropertyValue"}


async def edit(inst: Instance, uri: str, **kw: Any) -> None:
    async def go(ctx: Context, s: AsyncSession) -> None:
        await directory.update_profile(ctx, s, await actor(s, uri), **kw)

    await inst.run(go)


async def find(inst: Instance, *args: Any, **kw: Any) -> list[str]:
    async def go(ctx: Context, s: AsyncSession) -> list[str]:
        return [e.username for e in await directory.search(s, *args, **kw)]

    return await inst.run(go)


async def test_profile_fields_are_published_only_when_opted_in(instances: StartInstance) -> None:
    a = await instances("127.0.0.2")
    alice = await a.create_user("alice")
    assert await fields_of(alice) == {}
    await edit(a, alice, structure="Fédération CGT des cheminots", mandate="Secrétaire",
               skills="Droit du travail, négociation,  droit du travail", contact="a@x.fr <b>",
               show_structure=True, show_skills=True)
    assert await fields_of(alice) == {
        "Structure": "Fédération CGT des cheminots",
        "Compétences": "Droit du travail, négociation",  # deduplicated
    }
    await edit(a, alice, show_contact=True, show_skills=False)
    got = await fields_of(alice)
    assert got == {"Structure": "Fédération CGT des cheminots", "Contact": "a@x.fr &lt;b&gt;"}
    assert "Mandat" not in got  # never opted in
    async with a.session() as s:  # followers' servers are told to refetch the actor
        q = select(Activity.body).where(Activity.type == "Update")
        assert "Contact" in list((await s.execute(q)).scalars())[-1]
    with pytest.raises(directory.DirectoryError):
        await edit(a, alice, structure="x" * 300)


async def test_directory_search(instances: StartInstance) -> None:
    a = await instances("127.0.0.2")
    alice = await a.create_user("alice")
    dave = await a.create_user("dave")
    carol = await a.create_user("carol")
    await edit(a, alice, structure="Fédération CGT des cheminots", skills="Négociation, Droit",
               show_structure=True, show_skills=True, listed=True)
    # dave is listed but keeps his structure private: a structure search must not find him.
    await edit(a, dave, structure="Fédération des mines", skills="Santé au travail",
               show_skills=True, listed=True)
    # carol shows everything but is not listed.
    await edit(a, carol, structure="Fédération CGT des cheminots", show_structure=True)
    await a.create_coop("syndicat", "alice", title="Syndicat Œuvres sociales")
    await a.create_coop("federation", "alice", title="Fédération des cheminots")
    await a.create_coop("secret", "alice", title="Fédération secrète", private=True)

    async def tagged_post_and_remote_group(ctx: Context, s: AsyncSession) -> None:
        post = await local_post(ctx, s, "alice", "syndicat", "Appel à la #grève")
        s.add(ObjectTag(object_id=post.id, tag="grève"))
        doc = {"@context": "https://www.w3.org/ns/activitystreams",
               "id": "https://fede.example/c/nationale", "type": "Group",
               "preferredUsername": "nationale", "name": "FÉDÉRATION Nationale",
               "inbox": "https://fede.example/c/nationale/inbox",
               "publicKey": {"id": "https://fede.example/c/nationale#main-key",
                             "owner": "https://fede.example/c/nationale",
                             "publicKeyPem": keypair(0)[1]}}
        await store_actor(s, parse_actor(doc), doc)

    await a.run(tagged_post_and_remote_group)

    assert await find(a, "ALIC") == ["alice"]
    assert await find(a, structure="CHEMINOTS") == ["alice", "federation"]
    assert await find(a, structure="federation cgt") == ["alice"]
    assert await find(a, structure="fédération", kind="member") == ["alice"]
    assert await find(a, skill="negociation") == ["alice"]
    assert await find(a, skill="sante") == ["dave"]
    assert await find(a, hashtag="#Greve") == ["syndicat"]
    assert await find(a, hashtag="négociation") == ["alice"]
    # cooperatives, local first then known remote groups; never the private one
    assert await find(a, "federation", kind="coop") == ["federation", "nationale"]
    assert await find(a, "oeuvres") == ["syndicat"]
    assert "carol" not in await find(a) and "secret" not in await find(a)
    with pytest.raises(directory.DirectoryError):
        await find(a, kind="people")

    async with ClientSession() as http:
        async with http.get(f"{a.base}/directory.json", params={"structure": "Fédé"}) as r:
            items = (await r.json())["items"]
        assert [i["username"] for i in items] == ["alice", "federation", "nationale"]
        assert items[0]["fields"] == {"Structure": "Fédération CGT des cheminots",
                                      "Compétences": "Négociation, Droit"}
        async with http.get(f"{a.base}/directory.json", params={"skill": "sante"}) as r:
            (only,) = (await r.json())["items"]
        assert only["username"] == "dave" and "Structure" not in only["fields"]
        async with http.get(f"{a.base}/directory.json", params={"kind": "x"}) as r:
            assert r.status == 400
