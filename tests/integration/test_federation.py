"""Three real instances on 127.0.0.2, .3 and .4: follow, post, redistribute, undo, delete."""

from __future__ import annotations

from collections.abc import Awaitable

import pytest
from aiohttp import ClientSession
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.follows import follow, unfollow
from t3r1_fed.context import Context
from t3r1_fed.coops.posting import local_delete, local_post
from t3r1_fed.db.models import Actor, Follow, Object, Share
from tests.conftest import StartInstance
from tests.testrig import Instance, eventually

pytestmark = pytest.mark.federation


async def follow_state(inst: Instance, follower: str, followee: str) -> str | None:
    async with inst.session() as s:
        q = (select(Follow.state)
             .join(Actor, Actor.id == Follow.follower_id).where(Actor.uri == follower)
             .where(Follow.followee_id == select(Actor.id).where(Actor.uri == followee)
                    .scalar_subquery()))
        return (await s.execute(q)).scalar()


async def is_state(inst: Instance, follower: str, followee: str, state: str | None) -> bool:
    return await follow_state(inst, follower, followee) == state


async def stored(inst: Instance, uri: str) -> Object | None:
    async with inst.session() as s:
        return (await s.execute(select(Object).where(Object.uri == uri))).scalar()


async def shares_by(inst: Instance, group_uri: str, obj_uri: str) -> int:
    async with inst.session() as s:
        q = (select(func.count()).select_from(Share)
             .join(Actor, Actor.id == Share.actor_id).join(Object, Object.id == Share.object_id)
             .where(Actor.uri == group_uri, Object.uri == obj_uri))
        return int((await s.execute(q)).scalar_one())


async def test_three_instances_follow_post_undo_delete(instances: StartInstance) -> None:
    a = await instances("127.0.0.2")
    b = await instances("127.0.0.3")
    c = await instances("127.0.0.4")
    await a.create_user("alice")
    coop = await a.create_coop("syndicat", "alice", title="Syndicat des cheminots")
    bob = await b.create_user("bob")
    carol = await c.create_user("carol")

    # bob (B) and carol (C) follow the cooperative through WebFinger, as a user would.
    async def bob_follows(ctx: Context, s: AsyncSession) -> None:
        await follow(ctx, s, "bob", f"syndicat@{a.domain}")

    async def carol_follows(ctx: Context, s: AsyncSession) -> None:
        await follow(ctx, s, "carol", f"@syndicat@{a.domain}")

    await b.run(bob_follows)
    await c.run(carol_follows)
    await eventually(lambda: is_state(b, bob, coop, "accepted"), what="B got A's Accept")
    await eventually(lambda: is_state(c, carol, coop, "accepted"), what="C got A's Accept")
    assert await follow_state(a, bob, coop) == "accepted"
    assert await follow_state(a, carol, coop) == "accepted"

    # alice posts into the cooperative on A; B and C store it and the group's boost.
    async def post(ctx: Context, s: AsyncSession) -> str:
        return (await local_post(ctx, s, "alice", "syndicat", "Assemblée générale jeudi 18h")).uri

    note = await a.run(post)
    for inst in (b, c):
        obj = await eventually(lambda inst=inst: stored(inst, note), what=f"note on {inst.ip}")
        assert "Assemblée générale jeudi 18h" in (obj.content or "")
        assert await eventually(lambda inst=inst: shares_by(inst, coop, note)) == 1
        # Both Announce forms arrived (activity for 1b12 peers, object for Mastodon):
        # they land as one share.
        assert await shares_by(inst, coop, note) == 1

    # bob leaves: A stops delivering to B, C still receives.
    async def bob_leaves(ctx: Context, s: AsyncSession) -> None:
        await unfollow(ctx, s, "bob", coop)

    await b.run(bob_leaves)
    await eventually(lambda: is_state(a, bob, coop, None), what="A dropped bob's follow")
    note2 = await a.run(post)
    await eventually(lambda: stored(c, note2), what="second note on C")
    assert await stored(b, note2) is None

    # alice deletes the first post: C (still a member) tombstones it.
    async def delete(ctx: Context, s: AsyncSession) -> None:
        await local_delete(ctx, s, "alice", note)

    await a.run(delete)

    async def deleted_on_c() -> bool:
        obj = await stored(c, note)
        return obj is not None and obj.deleted_at is not None

    await eventually(deleted_on_c, what="delete propagated to C")
    # The group withdrew its boost too (Undo Announce), so it leaves Mastodon timelines.
    await eventually(lambda: _zero(shares_by(c, coop, note)), what="boost undone on C")
    # A serves a tombstone at the deleted note's id; C's copy of note2 is still there.
    async with ClientSession() as http:
        async with http.get(note, headers={"Accept": "application/activity+json"}) as resp:
            assert resp.status == 410
            assert (await resp.json(content_type=None))["type"] == "Tombstone"
    kept = await stored(c, note2)
    assert kept is not None and kept.deleted_at is None


async def _zero(count: Awaitable[int]) -> bool:
    return await count == 0
