"""Mastodon lists (/api/v1/lists …) against a real instance, form and JSON bodies."""

from __future__ import annotations

import asyncio

from aiohttp import ClientSession
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors import follows
from t3r1_fed.api.lists import list_member_ids
from t3r1_fed.context import Context
from t3r1_fed.db.models import Actor, Follow, User
from tests.conftest import StartInstance
from tests.integration.accounts_api_support import call, link
from tests.integration.small_api_support import quick_token
from tests.testrig import Instance


async def actor_id(inst: Instance, uri: str) -> int:
    async def go(ctx: Context, s: AsyncSession) -> int:
        return (await s.execute(select(Actor.id).where(Actor.uri == uri))).scalar_one()
    return await inst.run(go)


async def follow(inst: Instance, follower: int, followee: int, state: str = "accepted") -> None:
    async def go(ctx: Context, s: AsyncSession) -> None:
        s.add(Follow(uri=f"{inst.base}/follows/{follower}-{followee}", follower_id=follower,
                     followee_id=followee, state=state))
    await inst.run(go)


async def unfollow(inst: Instance, username: str, target_uri: str) -> None:
    """The real unfollow (actors/follows.py), as the API and the CLI do it."""
    await inst.run(lambda ctx, s: follows.unfollow(ctx, s, username, target_uri))


async def bulk_unfollow(inst: Instance, follower: int, followee: int) -> None:
    """A bulk DELETE, as the inbox does for remote actors: no ORM event fires."""
    async def go(ctx: Context, s: AsyncSession) -> None:
        await s.execute(delete(Follow).where(Follow.follower_id == follower,
                                             Follow.followee_id == followee))
    await inst.run(go)


async def members(inst: Instance, username: str, list_id: str) -> list[int] | None:
    async def go(ctx: Context, s: AsyncSession) -> list[int] | None:
        uid = (await s.execute(select(User.id).where(User.username == username))).scalar_one()
        return await list_member_ids(s, uid, int(list_id))
    return await inst.run(go)


async def test_lists_crud_members_and_privacy(instances: StartInstance) -> None:
    inst = await instances("127.0.0.2")
    uris = [await inst.create_user(n) for n in ("alice", "bob", "carol", "dave")]
    alice, bob, carol, dave = [await actor_id(inst, u) for u in uris]
    coop = await actor_id(inst, await inst.create_coop("syndicat", "bob"))
    await follow(inst, alice, bob)
    await follow(inst, alice, carol, "pending")  # a follow request counts, as in Mastodon
    await follow(inst, alice, coop)
    tok = await quick_token(inst, "alice", "read write")
    tok_bob = await quick_token(inst, "bob", "read write")

    # Create: form and JSON; defaults as Mastodon.
    st, first, _ = await call(inst, "POST", "/api/v1/lists", tok, data={"title": "Camarades"})
    assert st == 200, first
    assert first == {"id": first["id"], "title": "Camarades", "replies_policy": "list",
                     "exclusive": False}
    st, second, _ = await call(inst, "POST", "/api/v1/lists/", tok, json={
        "title": "Bureau", "replies_policy": "followed", "exclusive": True})
    assert st == 200 and second["replies_policy"] == "followed" and second["exclusive"] is True
    for bad, msg in (({"title": "  "}, "Title can't be blank"),
                     ({"title": "x", "replies_policy": "all"}, "Replies policy"),
                     ({"title": "x" * 300}, "too long")):
        st, body, _ = await call(inst, "POST", "/api/v1/lists", tok, data=bad)
        assert st == 422 and msg in body["error"], body
    async with ClientSession() as http:
        async with http.post(inst.base + "/api/v1/lists", data=b"{", headers={
                "Authorization": f"Bearer {tok}", "Content-Type": "application/json"}) as r:
            assert r.status == 400 and "error" in await r.json()
    st, lists, _ = await call(inst, "GET", "/api/v1/lists", tok)
    assert st == 200 and [x["title"] for x in lists] == ["Camarades", "Bureau"]

    # Only the owner sees, changes or deletes a list.
    one = f"/api/v1/lists/{first['id']}"
    for method in ("GET", "PUT", "DELETE"):
        st, body, _ = await call(inst, method, one, tok_bob, data={"title": "pris"})
        assert st == 404 and body == {"error": "Record not found"}
    st, body, _ = await call(inst, "GET", "/api/v1/lists", tok_bob)
    assert st == 200 and body == []
    for path in ("/api/v1/lists/999999", "/api/v1/lists/abc"):
        st, body, _ = await call(inst, "GET", path, tok)
        assert st == 404 and body == {"error": "Record not found"}

    st, body, _ = await call(inst, "PUT", one, tok, data={
        "title": "Camarades du dépôt", "replies_policy": "none", "exclusive": "1"})
    assert st == 200 and body == {"id": first["id"], "title": "Camarades du dépôt",
                                  "replies_policy": "none", "exclusive": True}
    st, body, _ = await call(inst, "PUT", one, tok, json={"exclusive": False})
    assert st == 200 and body["title"] == "Camarades du dépôt" and body["exclusive"] is False

    # Members: followed or requested accounts and oneself; all or nothing.
    st, body, _ = await call(inst, "POST", one + "/accounts", tok,
                             data=[("account_ids[]", str(bob)), ("account_ids[]", str(carol))])
    assert st == 200 and body == {}
    st, body, _ = await call(inst, "POST", one + "/accounts", tok,
                             json={"account_ids": [str(coop), str(dave)]})
    assert st == 422 and "must be a followed account" in body["error"]
    st, body, _ = await call(inst, "POST", one + "/accounts", tok,
                             data={"account_ids[]": "987654321"})
    assert st == 404
    st, body, _ = await call(inst, "POST", one + "/accounts", tok, data={"account_ids[]": bob})
    assert st == 422 and "already on the list" in body["error"]
    st, body, _ = await call(inst, "POST", one + "/accounts", tok, data={})
    assert st == 400
    st, _, _ = await call(inst, "POST", one + "/accounts", tok,
                          data=[("account_ids[]", str(coop)), ("account_ids[]", str(alice))])
    assert st == 200
    st, body, _ = await call(inst, "POST", one + "/accounts", tok_bob, data={"account_ids[]": bob})
    assert st == 404

    # Concurrent adds of one account to another list: one wins, the others get a 422.
    two = f"/api/v1/lists/{second['id']}/accounts"
    answers = await asyncio.gather(*(
        call(inst, "POST", two, tok, data={"account_ids[]": bob}) for _ in range(4)))
    assert sorted(a[0] for a in answers) == [200, 422, 422, 422], answers
    st, accts, _ = await call(inst, "GET", two, tok)
    assert [int(a["id"]) for a in accts] == [bob]

    st, accts, hdr = await call(inst, "GET", one + "/accounts?limit=0", tok)
    assert st == 200 and [int(a["id"]) for a in accts] == sorted([alice, bob, carol, coop],
                                                                 reverse=True)
    assert hdr == ""
    assert next(a for a in accts if int(a["id"]) == coop)["group"] is True
    st, page1, hdr = await call(inst, "GET", one + "/accounts?limit=3", tok)
    assert st == 200 and [a["id"] for a in page1] == [a["id"] for a in accts[:3]]
    nxt = link(hdr, "next")
    assert nxt is not None and "limit=3" in nxt
    st, page2, _ = await call(inst, "GET", nxt, tok)
    assert [a["id"] for a in page2] == [accts[3]["id"]]
    # The list timeline sees accepted follows and oneself, not a pending request.
    assert await members(inst, "alice", first["id"]) == sorted([alice, bob, coop])
    assert await members(inst, "bob", first["id"]) is None

    st, body, _ = await call(inst, "GET", f"/api/v1/accounts/{bob}/lists", tok)
    assert st == 200 and [x["id"] for x in body] == [first["id"], second["id"]]
    st, body, _ = await call(inst, "GET", f"/api/v1/accounts/{dave}/lists", tok)
    assert st == 200 and body == []
    st, body, _ = await call(inst, "GET", f"/api/v1/accounts/{bob}/lists", tok_bob)
    assert st == 200 and body == []  # alice's lists are not bob's business
    st, body, _ = await call(inst, "GET", "/api/v1/accounts/987654321/lists", tok)
    assert st == 404

    # Unfollowing removes from lists (as Mastodon); following again allows adding again.
    await unfollow(inst, "alice", uris[1])
    st, accts, _ = await call(inst, "GET", one + "/accounts", tok)
    assert bob not in [int(a["id"]) for a in accts]
    await follow(inst, alice, bob)
    st, accts, _ = await call(inst, "GET", one + "/accounts", tok)
    assert bob not in [int(a["id"]) for a in accts]  # gone for good, not hidden
    st, body, _ = await call(inst, "POST", one + "/accounts", tok, data={"account_ids[]": bob})
    assert st == 200, body
    # A bulk delete leaves the row, which is ignored, then purged by the next add.
    await bulk_unfollow(inst, alice, bob)
    st, body, _ = await call(inst, "GET", f"/api/v1/accounts/{bob}/lists", tok)
    assert st == 200 and body == []
    await follow(inst, alice, bob)
    st, body, _ = await call(inst, "POST", one + "/accounts", tok,
                             data={"account_ids[]": [bob, carol]})
    assert st == 422 and "already on the list" in body["error"]  # carol still is
    st, body, _ = await call(inst, "POST", one + "/accounts", tok, data={"account_ids[]": bob})
    assert st == 422  # hidden while unfollowed, back once followed again (no ORM event)

    st, body, _ = await call(inst, "DELETE", one + "/accounts", tok,
                             data=[("account_ids[]", str(carol)), ("account_ids[]", str(bob))])
    assert st == 200 and body == {}
    st, accts, _ = await call(inst, "GET", one + "/accounts", tok)
    assert sorted(int(a["id"]) for a in accts) == sorted([alice, coop])

    # Scopes.
    read_only = await quick_token(inst, "alice", "read:lists")
    st, _, _ = await call(inst, "POST", "/api/v1/lists", read_only, data={"title": "x"})
    assert st == 403
    st, _, _ = await call(inst, "GET", "/api/v1/lists", await quick_token(inst, "alice", "write"))
    assert st == 403
    st, _, _ = await call(inst, "GET", "/api/v1/lists")
    assert st == 401
    st, body, _ = await call(inst, "GET", one, read_only)
    assert st == 200 and body["title"] == "Camarades du dépôt"

    st, body, _ = await call(inst, "DELETE", one, tok)
    assert st == 200 and body == {}
    st, _, _ = await call(inst, "GET", one, tok)
    assert st == 404
    assert await members(inst, "alice", first["id"]) is None
    st, lists, _ = await call(inst, "GET", "/api/v1/lists", tok)
    assert [x["title"] for x in lists] == ["Bureau"]
