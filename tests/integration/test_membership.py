"""Membership of cooperatives across real instances: open, moderated and invite-only
cooperatives, Join/Leave/Undo, a Mastodon-like member, roles, the members and
pendingFollowers collections, and bans."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import ClientSession
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.follows import follow, unfollow
from t3r1_fed.context import Context
from t3r1_fed.coops.bans import ban, unban
from t3r1_fed.coops.membership import (
    MembershipError,
    answer_invite,
    approve,
    invitations,
    invite,
    join,
    leave,
    pending_requests,
    reject,
)
from t3r1_fed.coops.roles import RoleError, role_of, set_role
from t3r1_fed.db.models import Actor, Object
from t3r1_fed.db.models_coops import CoopBan, Invite
from t3r1_fed.vocab.context import AS_PUBLIC
from tests.conftest import StartInstance
from tests.integration.test_federation import follow_state, is_state
from tests.peer import Peer, PeerActor, wait_received
from tests.testrig import Instance, eventually

pytestmark = pytest.mark.federation

AS = "https://www.w3.org/ns/activitystreams"


async def act(inst: Instance, fn: Callable[..., Awaitable[Any]], *uris: str, **kw: Any) -> Any:
    """Run a service function as fn(ctx, session, *actors, **kw) in one transaction."""

    async def go(ctx: Context, s: AsyncSession) -> Any:
        actors = [
            (await s.execute(select(Actor).where(Actor.uri == u))).scalar_one() for u in uris
        ]
        return await fn(ctx, s, *actors, **kw)

    return await inst.run(go)


async def remote_follows(inst: Instance, user: str, target: str) -> None:
    async def go(ctx: Context, s: AsyncSession) -> None:
        await follow(ctx, s, user, target)

    await inst.run(go)


def activity(peer: Peer, kind: str, actor: PeerActor, obj: Any, n: str, **extra: Any) -> dict[
    str, Any
]:
    return {"@context": AS, "id": f"{peer.base}/activities/{n}", "type": kind,
            "actor": actor.id, "object": obj, **extra}


async def get(url: str, signer: PeerActor | None = None) -> tuple[int, Any]:
    # the signature covers Accept: keep the one sign_headers chose
    headers = signer.signed("GET", url) if signer else {"Accept": "application/activity+json"}
    async with ClientSession() as http, http.get(url, headers=headers) as r:
        return r.status, await r.json(content_type=None)


async def test_open_moderated_and_rejected_across_instances(instances: StartInstance) -> None:
    a = await instances("127.0.0.2")
    b = await instances("127.0.0.3")
    alice = await a.create_user("alice")
    mod = await a.create_user("mod")
    ouvert = await a.create_coop("ouvert", "alice")
    filtre = await a.create_coop("filtre", "alice", openness="moderated")
    bob = await b.create_user("bob")
    carol = await b.create_user("carol")

    # open: accepted at once, on both sides
    await remote_follows(b, "bob", f"ouvert@{a.domain}")
    await eventually(lambda: is_state(b, bob, ouvert, "accepted"), what="open: B accepted")
    assert await follow_state(a, bob, ouvert) == "accepted"

    # moderated: pending on both sides until a moderator decides
    await remote_follows(b, "bob", f"filtre@{a.domain}")
    await remote_follows(b, "carol", f"filtre@{a.domain}")
    await eventually(lambda: is_state(a, carol, filtre, "pending"), what="A got carol's request")
    await eventually(lambda: is_state(a, bob, filtre, "pending"), what="A got bob's request")
    assert await follow_state(b, bob, filtre) == "pending"

    async def listed(ctx: Context, s: AsyncSession, group: Actor) -> list[str]:
        return [x.uri for _, x in await pending_requests(s, group)]

    assert await act(a, listed, filtre) == [bob, carol]
    # a plain member cannot decide; an admin makes `mod` a moderator, who can
    with pytest.raises(RoleError):
        await act(a, approve, mod, filtre, bob)
    assert await act(a, set_role, alice, filtre, mod, role="moderator") == "moderator"
    await act(a, approve, mod, filtre, bob)
    await eventually(lambda: is_state(b, bob, filtre, "accepted"), what="B got the late Accept")
    assert await follow_state(a, bob, filtre) == "accepted"

    await act(a, reject, mod, filtre, carol)
    await eventually(lambda: is_state(b, carol, filtre, None), what="B dropped carol's request")
    assert await follow_state(a, carol, filtre) is None
    with pytest.raises(MembershipError):  # nothing pending any more
        await act(a, approve, mod, filtre, carol)

    # leaving: Undo{Follow} from B
    async def bob_leaves(ctx: Context, s: AsyncSession) -> None:
        await unfollow(ctx, s, "bob", filtre)

    await b.run(bob_leaves)
    await eventually(lambda: is_state(a, bob, filtre, None), what="A dropped bob (Undo Follow)")


async def test_invite_only_across_instances_and_locally(instances: StartInstance) -> None:
    a = await instances("127.0.0.2")
    b = await instances("127.0.0.3")
    alice = await a.create_user("alice")
    lou = await a.create_user("lou")
    coop = await a.create_coop("cercle", "alice", openness="invite_only")
    bob = await b.create_user("bob")
    eve = await b.create_user("eve")

    # eve asks without an invitation: it stays pending
    await remote_follows(b, "eve", f"cercle@{a.domain}")
    await eventually(lambda: is_state(a, eve, coop, "pending"), what="A got eve's request")

    # alice invites bob (on B): B keeps the invitation for bob to answer
    async def alice_invites_bob(ctx: Context, s: AsyncSession) -> Invite:
        from t3r1_fed.coops.membership import find_actor

        me = (await s.execute(select(Actor).where(Actor.uri == alice))).scalar_one()
        grp = (await s.execute(select(Actor).where(Actor.uri == coop))).scalar_one()
        return await invite(ctx, s, me, grp, await find_actor(ctx, s, f"bob@{b.domain}"))

    await a.run(alice_invites_bob)

    async def bobs_invitations(ctx: Context, s: AsyncSession, me: Actor) -> list[str]:
        return [g.uri for _, g in await invitations(s, me)]

    await eventually(lambda: act(b, bobs_invitations, bob), what="B stored the Invite")
    assert await act(b, bobs_invitations, bob) == [coop]
    assert await follow_state(a, bob, coop) is None

    await act(b, answer_invite, bob, coop, accept=True)
    await eventually(lambda: is_state(a, bob, coop, "accepted"), what="A shows bob as member")
    await eventually(lambda: is_state(b, bob, coop, "accepted"), what="B got the confirmation")
    assert await follow_state(a, eve, coop) == "pending"  # not invited: still waiting
    assert await act(a, role_of_uri, coop, bob) == "member"

    # a local invitee: recorded, answered through the service API, no HTTP
    await act(a, invite, alice, coop, lou)
    assert await act(a, bobs_invitations, lou) == [coop]
    await act(a, answer_invite, lou, coop, accept=True)
    assert await follow_state(a, lou, coop) == "accepted"
    # and a local member leaves through the service API
    await act(a, leave, lou, coop)
    assert await follow_state(a, lou, coop) is None
    with pytest.raises(MembershipError):  # no invitation any more: invite-only says no …
        await act(a, answer_invite, lou, coop, accept=False)
    assert (await act(a, join, lou, coop)).state == "pending"  # … and a request waits


async def role_of_uri(ctx: Context, s: AsyncSession, group: Actor, who: Actor) -> str | None:
    return await role_of(s, group.id, who.id)


async def test_mastodon_like_peer_follow_join_leave(instances: StartInstance) -> None:
    a = await instances("127.0.0.2")
    alice = await a.create_user("alice")
    filtre = await a.create_coop("filtre", "alice", openness="moderated")
    ouvert = await a.create_coop("ouvert", "alice")
    peer = await Peer("127.0.0.5").start()
    try:
        mona = peer.actor("mona")
        # Mastodon only sends Follow / Undo Follow
        fol = activity(peer, "Follow", mona, filtre, "f1")
        assert (await mona.post(f"{a.base}/inbox", fol))[0] == 202
        await eventually(lambda: is_state(a, mona.id, filtre, "pending"), what="pending")
        assert peer.activities("Accept") == []
        await act(a, approve, alice, filtre, mona.id)
        accept = (await wait_received(peer, 1, "Accept"))[0]
        assert accept["actor"] == filtre
        assert accept["object"]["id"] == fol["id"] and accept["object"]["type"] == "Follow"
        undo = activity(peer, "Undo", mona, {k: v for k, v in fol.items() if k != "@context"},
                        "u1")
        assert (await mona.post(f"{a.base}/inbox", undo))[0] == 202
        await eventually(lambda: is_state(a, mona.id, filtre, None), what="Undo Follow")

        # Join / Leave (Mobilizon, Smithereen): Accept echoes the Join
        j = activity(peer, "Join", mona, ouvert, "j1")
        assert (await mona.post(f"{a.base}/c/ouvert/inbox", j))[0] == 202
        accepts = await wait_received(peer, 2, "Accept")
        assert accepts[1]["object"]["type"] == "Join" and accepts[1]["object"]["id"] == j["id"]
        assert await follow_state(a, mona.id, ouvert) == "accepted"
        lv = activity(peer, "Leave", mona, ouvert, "l1")
        assert (await mona.post(f"{a.base}/c/ouvert/inbox", lv))[0] == 202
        await eventually(lambda: is_state(a, mona.id, ouvert, None), what="Leave")

        # a moderator rejects a Join: Reject{Join}
        j2 = activity(peer, "Join", mona, filtre, "j2")
        assert (await mona.post(f"{a.base}/inbox", j2))[0] == 202
        await eventually(lambda: is_state(a, mona.id, filtre, "pending"), what="Join pending")
        await act(a, reject, alice, filtre, mona.id)
        rej = (await wait_received(peer, 1, "Reject"))[0]
        assert rej["object"] == {"id": j2["id"], "type": "Join", "actor": mona.id,
                                 "object": filtre}
    finally:
        await peer.stop()


async def test_roles_admins_only_and_last_admin(instances: StartInstance) -> None:
    a = await instances("127.0.0.2")
    alice = await a.create_user("alice")
    bea = await a.create_user("bea")
    carl = await a.create_user("carl")
    coop = await a.create_coop("syndicat", "alice")
    with pytest.raises(RoleError, match="only the cooperative's admins"):
        await act(a, set_role, bea, coop, carl, role="moderator")
    with pytest.raises(RoleError, match="last admin"):
        await act(a, set_role, alice, coop, alice, role="moderator")
    with pytest.raises(RoleError, match="role must be"):
        await act(a, set_role, alice, coop, bea, role="owner")
    assert await act(a, set_role, alice, coop, bea, role="moderator") == "moderator"
    with pytest.raises(RoleError):  # moderators don't manage roles
        await act(a, set_role, bea, coop, carl, role="moderator")
    assert await act(a, set_role, alice, coop, bea, role="admin") == "admin"
    assert await act(a, set_role, bea, coop, alice, role="member") == "member"
    assert await act(a, role_of_uri, coop, alice) is None  # not a follower: no role left
    with pytest.raises(RoleError, match="last admin"):
        await act(a, set_role, bea, coop, bea, role="member")
    _, mods = await get(f"{coop}/moderators")
    assert mods["orderedItems"] == [bea]


async def test_members_and_pending_collections(instances: StartInstance) -> None:
    a = await instances("127.0.0.2")
    alice = await a.create_user("alice")
    coop = await a.create_coop("filtre", "alice", openness="moderated")
    p1 = await Peer("127.0.0.5").start()
    p2 = await Peer("127.0.0.6").start()
    try:
        mona, neighbour, otto = p1.actor("mona"), p1.actor("nina"), p2.actor("otto")
        for who, peer, n in ((mona, p1, "1"), (otto, p2, "2")):
            fol = activity(peer, "Follow", who, coop, n)
            assert (await who.post(f"{a.base}/inbox", fol))[0] == 202
            await eventually(lambda who=who: is_state(a, who.id, coop, "pending"))
        await act(a, approve, alice, coop, mona.id)
        # the actor document lists both collections
        _, doc = await get(coop)
        assert doc["members"] == f"{coop}/members"
        assert doc["endpoints"]["pendingFollowers"] == f"{coop}/pendingFollowers"

        members = f"{coop}/members"
        assert (await get(members))[0] == 404  # anonymous
        assert (await get(members, otto))[0] == 404  # signed, but no member on its instance
        status, coll = await get(members, neighbour)  # another actor of a member's instance
        assert status == 200 and coll["totalItems"] == 1
        status, page = await get(coll["first"], neighbour)
        assert status == 200 and page["orderedItems"] == [mona.id]

        pending = f"{coop}/pendingFollowers"
        assert (await get(pending))[0] == 404
        assert (await get(pending, mona))[0] == 404  # a member, not a moderator
        await act(a, set_role, alice, coop, mona.id, role="moderator")
        status, page = await get(f"{pending}?page=true", mona)
        assert status == 200 and page["orderedItems"] == [otto.id]
        assert (await get(f"{pending}?page=true", otto))[0] == 404
    finally:
        await p1.stop()
        await p2.stop()


async def test_ban_rejects_follow_and_posts(instances: StartInstance) -> None:
    a = await instances("127.0.0.2")
    alice = await a.create_user("alice")
    coop = await a.create_coop("syndicat", "alice")
    p1 = await Peer("127.0.0.5").start()
    p2 = await Peer("127.0.0.6").start()
    try:
        mona, otto = p1.actor("mona"), p2.actor("otto")
        for who, peer, n in ((mona, p1, "1"), (otto, p2, "2")):
            fol = activity(peer, "Follow", who, coop, n)
            assert (await who.post(f"{a.base}/inbox", fol))[0] == 202
            await wait_received(peer, 1, "Accept")

        await act(a, ban, alice, coop, mona.id, reason="spam", until=None)
        rej = (await wait_received(p1, 1, "Reject"))[0]
        assert rej["object"]["type"] == "Follow"
        assert rej["object"]["id"] == f"{p1.base}/activities/1"
        block = (await wait_received(p1, 1, "Block"))[0]
        assert block["object"] == mona.id and block["target"] == coop
        assert block["actor"] == alice and block["summary"] == "spam"
        assert block["removeData"] is False
        announced = (await wait_received(p2, 1, "Announce"))[0]  # to the other members
        assert announced["actor"] == coop and announced["object"]["id"] == block["id"]
        assert await follow_state(a, mona.id, coop) is None
        async with a.session() as s:
            assert (await s.execute(select(CoopBan))).scalar_one().reason == "spam"

        # a new Follow is rejected
        fol = activity(p1, "Follow", mona, coop, "3")
        assert (await mona.post(f"{a.base}/inbox", fol))[0] == 202
        rejects = await wait_received(p1, 2, "Reject")
        assert rejects[1]["object"]["id"] == fol["id"]
        assert await follow_state(a, mona.id, coop) is None

        # a post into the cooperative is refused with a Reject of the Create
        note = p1.note(mona, "Achetez mes montres", to=[AS_PUBLIC], cc=[coop])
        create = activity(p1, "Create", mona, {k: v for k, v in note.items() if k != "@context"},
                          "c1", to=note["to"], cc=note["cc"])
        assert (await mona.post(f"{a.base}/c/syndicat/inbox", create))[0] == 202
        rejects = await wait_received(p1, 3, "Reject")
        assert rejects[2]["object"] == create["id"]
        async with a.session() as s:
            obj = (await s.execute(select(Object).where(Object.uri == note["id"]))).scalar()
            assert obj is None or obj.group_id is None
        assert len(p2.activities("Announce")) == 1  # the post was not redistributed

        await act(a, unban, alice, coop, mona.id)
        undo = (await wait_received(p1, 1, "Undo"))[0]
        assert undo["object"]["type"] == "Block" and undo["object"]["id"] == block["id"]
        await wait_received(p2, 2, "Announce")
        with pytest.raises(MembershipError):
            await act(a, unban, alice, coop, mona.id)
        fol = activity(p1, "Follow", mona, coop, "4")
        assert (await mona.post(f"{a.base}/inbox", fol))[0] == 202
        await eventually(lambda: is_state(a, mona.id, coop, "accepted"), what="welcome back")
    finally:
        await p1.stop()
        await p2.stop()


async def test_invited_peer_joins_or_refuses(instances: StartInstance) -> None:
    a = await instances("127.0.0.2")
    alice = await a.create_user("alice")
    coop = await a.create_coop("cercle", "alice", openness="invite_only")
    peer = await Peer("127.0.0.5").start()
    try:
        mona, nina = peer.actor("mona"), peer.actor("nina")
        # the peer actors are not known yet: resolve them by URL, as the CLI would
        async def invite_by_url(ctx: Context, s: AsyncSession, uri: str) -> Invite:
            from t3r1_fed.coops.membership import find_actor

            me = (await s.execute(select(Actor).where(Actor.uri == alice))).scalar_one()
            grp = (await s.execute(select(Actor).where(Actor.uri == coop))).scalar_one()
            return await invite(ctx, s, me, grp, await find_actor(ctx, s, uri))

        for who in (mona, nina):
            await a.run(lambda ctx, s, who=who: invite_by_url(ctx, s, who.id))
        invites = await wait_received(peer, 2, "Invite")
        to_mona = next(i for i in invites if i["target"] == mona.id)
        assert to_mona["actor"] == alice and to_mona["object"] == coop

        # mona answers with Join (Mobilizon's way): accepted, Accept{Join}
        j = activity(peer, "Join", mona, coop, "j1")
        assert (await mona.post(f"{a.base}/inbox", j))[0] == 202
        accept = (await wait_received(peer, 1, "Accept"))[0]
        assert accept["object"]["id"] == j["id"] and accept["object"]["type"] == "Join"
        assert await follow_state(a, mona.id, coop) == "accepted"

        # nina refuses: the invitation is closed, and a later Follow waits for a moderator
        to_nina = next(i for i in invites if i["target"] == nina.id)
        no = activity(peer, "Reject", nina, {k: v for k, v in to_nina.items()
                                             if k != "@context"}, "r1")
        assert (await nina.post(f"{a.base}/inbox", no))[0] == 202

        async def nina_invite() -> str | None:
            async with a.session() as s:
                q = select(Invite.state).join(Actor, Actor.id == Invite.invitee_id)
                return (await s.execute(q.where(Actor.uri == nina.id))).scalar()

        await eventually(lambda: _is(nina_invite(), "rejected"), what="invitation refused")
        fol = activity(peer, "Follow", nina, coop, "f1")
        assert (await nina.post(f"{a.base}/inbox", fol))[0] == 202
        await eventually(lambda: is_state(a, nina.id, coop, "pending"), what="nina pending")
    finally:
        await peer.stop()


async def _is(value: Awaitable[Any], expected: Any) -> bool:
    return await value == expected
