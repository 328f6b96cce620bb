"""FEP-f228 backfill of remote threads, between two real instances.

B hosts a public cooperative with a thread and replies; A's member joins after most of the
thread was written, so A learns of the last reply only (the group's Announce). A's worker
then reads the thread's context collection on B and stores the root and the other replies,
threaded and filed in the cooperative.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from aiohttp import ClientSession
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.follows import follow
from t3r1_fed.context import Context
from t3r1_fed.coops.forum import reply, start_thread
from t3r1_fed.coops.news import member_actor
from t3r1_fed.db.models import Actor, Follow, Object
from t3r1_fed.db.models_coops import ContextBackfill
from t3r1_fed.inbox.backfill import BACKFILL_INTERVAL, request_backfill
from t3r1_fed.inbox.objects import resolve_object
from t3r1_fed.vocab.context import AS_PUBLIC
from tests.conftest import StartInstance
from tests.integration.small_api_support import quick_token
from tests.peer import CONTEXT, Peer
from tests.testrig import Instance, eventually

pytestmark = pytest.mark.federation


async def stored(inst: Instance, uri: str) -> Object | None:
    async with inst.session() as s:
        return (await s.execute(select(Object).where(Object.uri == uri))).scalar()


async def backfill_row(inst: Instance, context: str) -> ContextBackfill | None:
    async with inst.session() as s:
        q = select(ContextBackfill).where(ContextBackfill.context == context)
        return (await s.execute(q)).scalar()


async def test_remote_thread_is_backfilled_from_its_context(instances: StartInstance) -> None:
    a = await instances("127.0.0.2")
    b = await instances("127.0.0.3")
    await b.create_user("bob")
    await b.create_user("berthe")
    coop = await b.create_coop("atelier", "bob")
    await a.create_user("carol")

    async def thread(ctx: Context, s: AsyncSession) -> tuple[str, str, str]:
        bob = await member_actor(s, "bob")
        berthe = await member_actor(s, "berthe")
        root = await start_thread(ctx, s, bob, "atelier", "Horaires d'été",
                                  "Qui est disponible en **juillet** ?")
        r1 = await reply(ctx, s, berthe, root.uri, "Moi, la première quinzaine.")
        r2 = await reply(ctx, s, bob, r1.uri, "Parfait, je note.")
        return root.uri, r1.uri, r2.uri

    root, r1, r2 = await b.run(thread)
    context = (await stored(b, root)).context  # type: ignore[union-attr]
    assert context and context.startswith(f"{coop}/discussions/")

    # carol joins only now: A has never seen the thread.
    async def carol_joins(ctx: Context, s: AsyncSession) -> None:
        await follow(ctx, s, "carol", f"atelier@{b.domain}")

    await a.run(carol_joins)

    async def joined() -> bool:
        async with a.session() as s:
            q = (select(Follow.state).join(Actor, Actor.id == Follow.follower_id)
                 .where(Actor.uri == a.ctx.uris.user("carol")))
            return (await s.execute(q)).scalar() == "accepted"

    await eventually(joined, what="carol accepted")
    for uri in (root, r1, r2):
        assert await stored(a, uri) is None

    async def last_reply(ctx: Context, s: AsyncSession) -> str:
        berthe = await member_actor(s, "berthe")
        return (await reply(ctx, s, berthe, r2, "Et moi la seconde.")).uri

    r3 = await b.run(last_reply)

    # A learns of r3 (the group's Announce) and backfills the rest of the thread.
    async def complete() -> list[Object] | None:
        rows = [await stored(a, u) for u in (root, r1, r2, r3)]
        if any(r is None for r in rows):
            return None
        return [r for r in rows if r is not None]

    rows = await eventually(complete, what="thread backfilled on A", timeout=20)
    assert rows is not None
    async with a.session() as s:
        group_id = (await s.execute(select(Actor.id).where(Actor.uri == coop))).scalar_one()
    on_a = {r.uri: r for r in rows}

    async def threaded() -> bool:
        r = await stored(a, r3)
        return r is not None and r.thread_id == on_a[root].id

    await eventually(threaded, what="the last reply threaded on its root")
    assert on_a[root].kind == "thread" and on_a[root].thread_id is None
    assert on_a[root].name == "Horaires d'été"
    for uri in (r1, r2):
        assert on_a[uri].thread_id == on_a[root].id and on_a[uri].kind == "reply"
    for uri in (root, r1, r2, r3):
        assert on_a[uri].group_id == group_id, uri
        assert on_a[uri].context == context
    assert "première quinzaine" in (on_a[r1].content or "")

    row = await backfill_row(a, context)
    assert row is not None and row.fetched_at is not None
    assert row.due_at is None and row.last_error is None and row.stored_items == 3
    assert row.group_id == group_id

    # Rate limit: asked again at once, the context waits for the end of the window.
    async def again(ctx: Context, s: AsyncSession) -> bool:
        return await request_backfill(s, context, group_id)

    assert await a.run(again) is True
    assert await a.run(again) is False  # already due
    row = await backfill_row(a, context)
    assert row is not None and row.due_at is not None and row.fetched_at is not None
    assert row.due_at >= row.fetched_at + BACKFILL_INTERVAL - timedelta(seconds=1)


async def test_member_opening_a_remote_thread_backfills_it(instances: StartInstance) -> None:
    a = await instances("127.0.0.2")
    b = await instances("127.0.0.3")
    await b.create_user("bob")
    await b.create_coop("atelier", "bob")
    await a.create_user("carol")

    async def thread(ctx: Context, s: AsyncSession) -> tuple[str, str, str]:
        bob = await member_actor(s, "bob")
        root = await start_thread(ctx, s, bob, "atelier", "Covoiturage", "Qui part de Lyon ?")
        r1 = await reply(ctx, s, bob, root.uri, "Moi, samedi matin.")
        r2 = await reply(ctx, s, bob, r1.uri, "Deux places libres.")
        return root.uri, r1.uri, r2.uri

    root, r1, r2 = await b.run(thread)

    # A knows the thread's first post only (found through search, say).
    async def find(ctx: Context, s: AsyncSession) -> int:
        return (await resolve_object(ctx, s, root)).sid

    sid = await a.run(find)
    token = await quick_token(a, "carol")
    url = f"{a.base}/api/v1/statuses/{sid}/context"
    async with ClientSession() as http:
        async with http.get(url) as r:  # anonymous readers trigger nothing
            assert r.status == 200 and (await r.json())["descendants"] == []
        on_a = await stored(a, root)
        assert on_a is not None and on_a.context
        assert await backfill_row(a, on_a.context) is None
        headers = {"Authorization": f"Bearer {token}"}
        async with http.get(url, headers=headers) as r:
            assert r.status == 200 and (await r.json())["descendants"] == []

        async def replies_here() -> bool:
            rows = [await stored(a, u) for u in (r1, r2)]
            return all(x is not None and x.thread_id is not None for x in rows)

        await eventually(replies_here, what="replies backfilled on A", timeout=20)
        async with http.get(url, headers=headers) as r:
            body = await r.json()
    assert [d["uri"] for d in body["descendants"]] == [r1, r2]
    assert "Deux places libres." in body["descendants"][1]["content"]


async def test_backfill_reads_pages_activities_and_refuses_what_it_must(
    instances: StartInstance,
) -> None:
    """A peer's context: an embedded first page with an embedded root, a second page with
    a `Create` and a bare id, and a `next` page on another host (not followed); then a
    reply whose `context` is not a collection (recorded as an error, nothing stored)."""
    a = await instances("127.0.0.2")
    alice = await a.create_user("alice")
    peer = await Peer("127.0.0.5").start()
    try:
        mona, lea = peer.actor("mona"), peer.actor("lea", key_index=1)
        ctx_uri = f"{peer.base}/objects/ctx"
        root = peer.note(mona, "Racine", to=[AS_PUBLIC], oid="root")
        r1 = peer.note(lea, "Un", to=[AS_PUBLIC], in_reply_to=root["id"], oid="r1")
        r2 = peer.note(mona, "Deux", to=[AS_PUBLIC], in_reply_to=r1["id"], oid="r2")
        r3 = peer.note(mona, "Trois", to=[alice], in_reply_to=r2["id"], oid="r3")
        for n in (root, r1, r2, r3):
            n["context"] = ctx_uri
        embedded_root = {k: v for k, v in root.items() if k != "@context"}
        peer.objects[ctx_uri] = {
            "@context": CONTEXT, "id": ctx_uri, "type": "OrderedCollection", "totalItems": 4,
            "first": {"id": f"{ctx_uri}-p1", "type": "OrderedCollectionPage",
                      "partOf": ctx_uri, "orderedItems": [embedded_root],
                      "next": f"{peer.base}/objects/p2"}}
        peer.objects[f"{peer.base}/objects/p2"] = {
            "@context": CONTEXT, "id": f"{peer.base}/objects/p2",
            "type": "OrderedCollectionPage", "partOf": ctx_uri,
            "orderedItems": [{"id": f"{r1['id']}/create", "type": "Create",
                              "actor": lea.id, "object": r1["id"]}, r2["id"], r3["id"]],
            "next": "http://127.0.0.9:9/objects/p3"}  # another host: never fetched
        create = {"@context": CONTEXT, "id": f"{r3['id']}/create", "type": "Create",
                  "actor": mona.id, "object": {k: v for k, v in r3.items() if k != "@context"},
                  "to": [alice]}
        assert (await mona.post(f"{a.base}/inbox", create))[0] == 202

        async def threaded() -> list[Object] | None:
            rows = [await stored(a, n["id"]) for n in (root, r1, r2, r3)]
            if any(r is None or (r.in_reply_to and r.thread_id is None) for r in rows):
                return None
            return [r for r in rows if r is not None]

        rows = await eventually(threaded, what="peer thread backfilled", timeout=20)
        assert rows is not None
        assert all(r.thread_id == rows[0].id for r in rows[1:])
        row = await backfill_row(a, ctx_uri)
        assert row is not None and row.last_error is None and row.stored_items == 3

        # A context that is not a collection: an error recorded, nothing fetched beyond it.
        bad_ctx = peer.note(mona, "pas une collection", to=[AS_PUBLIC], oid="notcoll")
        orphan = peer.note(mona, "Orpheline", to=[alice], in_reply_to=f"{peer.base}/objects/gone",
                           oid="r9")
        orphan["context"] = bad_ctx["id"]
        create = {"@context": CONTEXT, "id": f"{orphan['id']}/create", "type": "Create",
                  "actor": mona.id,
                  "object": {k: v for k, v in orphan.items() if k != "@context"},
                  "to": [alice]}
        assert (await mona.post(f"{a.base}/inbox", create))[0] == 202

        async def failed() -> str | None:
            r = await backfill_row(a, bad_ctx["id"])
            return r.last_error if r is not None and r.due_at is None else None

        error = await eventually(failed, what="backfill of a non-collection recorded")
        assert error is not None and "not a collection" in error
        assert await stored(a, bad_ctx["id"]) is None
    finally:
        await peer.stop()
