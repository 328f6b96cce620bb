"""FAQ of a cooperative across two real instances: A hosts it, bob on B is a member.

Entries (FEP-400e `Create{Article, target: faq}` answered by the group's `Add`) appear in
A's `faq` collection in order and in B's copy; edits by the author or a moderator reach B;
moderators reorder and remove; search ignores case and accents.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from aiohttp import ClientSession
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.follows import follow
from t3r1_fed.context import Context
from t3r1_fed.coops import faq
from t3r1_fed.db.models import Actor, Object
from t3r1_fed.vocab.context import AS_PUBLIC
from tests.conftest import StartInstance
from tests.integration.test_federation import is_state
from tests.peer import CONTEXT, Peer, wait_received
from tests.testrig import Instance, eventually

pytestmark = pytest.mark.federation
T = TypeVar("T")


async def actor(s: AsyncSession, uri: str) -> Actor:
    return (await s.execute(select(Actor).where(Actor.uri == uri))).scalar_one()


def as_(who: str, group: str, fn: Callable[..., Awaitable[T]], *args: Any) -> Callable[
    [Context, AsyncSession], Awaitable[T]
]:
    """fn(ctx, session, <who's Actor>, <group's Actor>, *args) in one transaction."""

    async def go(ctx: Context, s: AsyncSession) -> T:
        return await fn(ctx, s, await actor(s, who), await actor(s, group), *args)

    return go


async def copy_of(inst: Instance, uri: str) -> Object | None:
    async with inst.session() as s:
        return (await s.execute(select(Object).where(Object.uri == uri))).scalar()


async def b_order(inst: Instance, group: str) -> list[str]:
    async with inst.session() as s:
        return [o.uri for o in await faq.list_faq(s, await actor(s, group))]


async def collection(url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    async with ClientSession() as http:
        h = {"Accept": "application/activity+json"}
        async with http.get(url, headers=h) as r:
            assert r.status == 200
            coll = await r.json(content_type=None)
        async with http.get(coll["first"], headers=h) as r:
            return coll, await r.json(content_type=None)


async def test_faq_entries_federate_edit_reorder_search_remove(instances: StartInstance) -> None:
    a = await instances("127.0.0.2")
    b = await instances("127.0.0.3")
    alice = await a.create_user("alice")  # the coop's admin (owner)
    carol = await a.create_user("carol")
    dave = await a.create_user("dave")
    eve = await a.create_user("eve")  # not a member
    coop = await a.create_coop("syndicat", "alice", title="Syndicat des cheminots")
    bob = await b.create_user("bob")

    async def joins(ctx: Context, s: AsyncSession) -> None:
        for name in ("carol", "dave"):
            await follow(ctx, s, name, coop)

    await a.run(joins)
    await b.run(lambda ctx, s: follow(ctx, s, "bob", f"syndicat@{a.domain}"))

    await eventually(lambda: is_state(b, bob, coop, "accepted"), what="bob is a member")

    # The group actor advertises its FAQ (top level and under endpoints).
    async with ClientSession() as http:
        async with http.get(coop, headers={"Accept": "application/activity+json"}) as r:
            doc = await r.json(content_type=None)
    assert doc["faq"] == doc["endpoints"]["faq"] == f"{coop}/faq"

    # A non-member may not add to the FAQ.
    with pytest.raises(faq.FaqError):
        await a.run(as_(eve, coop, faq.add_entry, "Question ?", "Réponse."))

    q1 = "Comment se déclarer en grève ?"
    e1 = (await a.run(as_(carol, coop, faq.add_entry, q1,
                          "Il suffit de **cesser le travail** collectivement."))).uri
    e2 = (await a.run(as_(alice, coop, faq.add_entry, "Qui contacter au secrétariat ?",
                          "Écrire au *secrétariat* de la section."))).uri

    coll, page = await collection(f"{coop}/faq")
    assert coll["type"] == "OrderedCollection" and coll["totalItems"] == 2
    assert [i["id"] for i in page["orderedItems"]] == [e1, e2]
    first = page["orderedItems"][0]
    assert first["type"] == "Article" and first["name"] == q1
    assert "<strong>cesser le travail</strong>" in first["content"]
    assert first["source"]["mediaType"] == "text/markdown"
    assert first["target"] == {"type": "OrderedCollection", "id": f"{coop}/faq",
                               "attributedTo": coop}

    # B got the entries (Announce) and the group's Add: they are B's copy of the FAQ.
    await eventually(lambda: _eq(b_order(b, coop), [e1, e2]), what="B's copy of the FAQ")
    copy = await copy_of(b, e1)
    assert copy is not None and copy.kind == "faq" and copy.name == q1

    # dave (member, not the author, not a moderator) may not edit carol's entry.
    async def dave_edits(ctx: Context, s: AsyncSession) -> None:
        await faq.edit_entry(ctx, s, await actor(s, dave), e1, q1, "Autre chose.")

    with pytest.raises(faq.FaqError):
        await a.run(dave_edits)

    # alice (admin) edits it: A's copy changes and B gets the update via the group.
    async def alice_edits(ctx: Context, s: AsyncSession) -> None:
        await faq.edit_entry(ctx, s, await actor(s, alice), e1, q1,
                             "Il faut un **préavis** dans le service public.")

    await a.run(alice_edits)

    async def b_updated() -> bool:
        o = await copy_of(b, e1)
        return o is not None and "<strong>préavis</strong>" in (o.content or "")

    await eventually(b_updated, what="the moderator's edit on B")

    # Reorder: only moderators; the collection and B's copy follow.
    with pytest.raises(faq.FaqError):
        await a.run(as_(carol, coop, faq.reorder_faq, [e2, e1]))
    with pytest.raises(faq.FaqError):
        await a.run(as_(alice, coop, faq.reorder_faq, [e2]))  # must list every entry
    await a.run(as_(alice, coop, faq.reorder_faq, [e2, e1]))
    _, page = await collection(f"{coop}/faq")
    assert [i["id"] for i in page["orderedItems"]] == [e2, e1]
    await eventually(lambda: _eq(b_order(b, coop), [e2, e1]), what="B's copy reordered")

    # Search: case- and accent-insensitive, over question and answer.
    async with a.session() as s:
        group = await actor(s, coop)
        assert [e.uri for e in await faq.search_faq(s, group, "GREVE")] == [e1]
        assert [e.uri for e in await faq.search_faq(s, group, "preavis greve")] == [e1]
        assert [e.uri for e in await faq.search_faq(s, group, "secretariat")] == [e2]
        assert await faq.search_faq(s, group, "licenciement") == []

    # Removal by a moderator: gone from A's collection and from B's copy; the Article stays.
    async def remove(ctx: Context, s: AsyncSession) -> None:
        await faq.remove_entry(ctx, s, await actor(s, alice), e2, "doublon")

    async def carol_removes(ctx: Context, s: AsyncSession) -> None:
        await faq.remove_entry(ctx, s, await actor(s, carol), e1)

    with pytest.raises(faq.FaqError):
        await a.run(carol_removes)
    await a.run(remove)
    coll, page = await collection(f"{coop}/faq")
    assert coll["totalItems"] == 1 and [i["id"] for i in page["orderedItems"]] == [e1]
    await eventually(lambda: _eq(b_order(b, coop), [e1]), what="removal on B")
    kept = await copy_of(b, e2)
    assert kept is not None and kept.deleted_at is None and kept.removed_reason == "doublon"


async def _eq(value: Awaitable[T], expected: T) -> bool:
    return await value == expected


async def test_remote_entry_is_added_non_member_refused_private_faq_hidden(
    instances: StartInstance,
) -> None:
    a = await instances("127.0.0.2")
    await a.create_user("alice")
    coop = await a.create_coop("syndicat", "alice")
    await a.create_coop("secret", "alice", private=True)
    peer = await Peer("127.0.0.5").start()
    try:
        mona, otto = peer.actor("mona"), peer.actor("otto", key_index=1)
        follow_ = {"@context": CONTEXT, "id": f"{peer.base}/follows/1", "type": "Follow",
                   "actor": mona.id, "object": coop}
        assert (await mona.post(f"{a.base}/inbox", follow_))[0] == 202
        await wait_received(peer, 1, "Accept")

        def entry(author: str, n: int) -> dict[str, Any]:
            uri = f"{peer.base}/objects/q{n}"
            article = {"id": uri, "type": "Article", "attributedTo": author,
                       "name": "Peut-on faire grève pendant un préavis ?",
                       "content": "<p>Oui, dès son terme.</p>", "to": [AS_PUBLIC],
                       "cc": [coop], "audience": coop,
                       "target": {"type": "OrderedCollection", "id": f"{coop}/faq",
                                  "attributedTo": coop}}
            peer.objects[uri] = {"@context": CONTEXT, **article}
            return {"@context": CONTEXT, "id": f"{uri}/create", "type": "Create",
                    "actor": author, "object": article, "to": [AS_PUBLIC], "cc": [coop]}

        # mona, a member on another server, adds an entry (FEP-400e): the group adds it.
        create = entry(mona.id, 1)
        assert (await mona.post(f"{a.base}/c/syndicat/inbox", create))[0] == 202
        add = (await wait_received(peer, 1, "Add"))[0]
        assert add["actor"] == coop and add["object"] == create["object"]["id"]
        assert add["target"]["id"] == f"{coop}/faq" and add["position"] == 1
        _, page = await collection(f"{coop}/faq")
        assert [i["id"] for i in page["orderedItems"]] == [create["object"]["id"]]

        # otto is not a member: refused with a Reject, and not in the FAQ.
        refused = entry(otto.id, 2)
        assert (await otto.post(f"{a.base}/c/syndicat/inbox", refused))[0] == 202
        reject = next(r for r in await _rejects(peer) if r["object"] == refused["id"])
        assert "FAQ" in reject["summary"]
        coll, _ = await collection(f"{coop}/faq")
        assert coll["totalItems"] == 1

        # A private cooperative's FAQ is not served to anonymous or unrelated readers.
        async with ClientSession() as http:
            h = {"Accept": "application/activity+json"}
            async with http.get(f"{a.base}/c/secret/faq", headers=h) as r:
                assert r.status == 404
            url = f"{a.base}/c/secret/faq"
            async with http.get(url, headers={**h, **otto.signed("GET", url)}) as r:
                assert r.status == 404
    finally:
        await peer.stop()


async def _rejects(peer: Peer) -> list[dict[str, Any]]:
    return await wait_received(peer, 1, "Reject")
