"""Private cooperatives: who may read, who receives, and in which form.

Real instances (A hosts the private cooperative, B is a t3r1 instance with a member) and
real peers: a Mastodon-like server (its NodeInfo says `mastodon`), a former member's
server, a banned member's server and a server without members.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession, web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.follows import follow
from t3r1_fed.context import Context
from t3r1_fed.coops.membership import approve
from t3r1_fed.coops.posting import local_delete, local_post
from t3r1_fed.db.models import Activity, Actor, Delivery, Follow, Host, Object
from t3r1_fed.db.models_coops import CoopBan
from t3r1_fed.federation.httpsig import sign_headers
from t3r1_fed.federation.keys import load_private_key
from t3r1_fed.federation.resolver import fetch_document
from t3r1_fed.vocab.context import AS_PUBLIC
from tests.conftest import StartInstance
from tests.peer import AS2, Peer, PeerActor, wait_received
from tests.testrig import Instance, eventually, free_socket

pytestmark = pytest.mark.federation

CONTENT_TYPES = {"Create", "Announce", "Update", "Delete", "Undo"}


@dataclass
class NodeInfoPeer(Peer):
    """A peer that also serves NodeInfo, naming its software (Mastodon by default)."""

    software: str = "mastodon"

    async def start(self) -> NodeInfoPeer:
        app = web.Application()
        app.router.add_get("/users/{name}", self._actor)
        app.router.add_post("/users/{name}/inbox", self._inbox)
        app.router.add_post("/inbox", self._inbox)
        app.router.add_get("/objects/{oid}", self._object)
        app.router.add_get("/.well-known/webfinger", self._webfinger)
        app.router.add_get("/.well-known/nodeinfo", self._nodeinfo_index)
        app.router.add_get("/nodeinfo/2.0", self._nodeinfo)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self._sock = free_socket(self.ip)
        self.port = self._sock.getsockname()[1]
        await web.SockSite(self._runner, self._sock).start()
        return self

    async def _nodeinfo_index(self, request: web.Request) -> web.Response:
        links = [{"rel": "http://nodeinfo.diaspora.software/ns/schema/2.0",
                  "href": f"{self.base}/nodeinfo/2.0"}]
        return web.json_response({"links": links})

    async def _nodeinfo(self, request: web.Request) -> web.Response:
        return web.json_response({"version": "2.0", "software": {
            "name": self.software, "version": "4.3.0"}, "protocols": ["activitypub"]})


# ---- helpers ----------------------------------------------------------------------------------


def ctx_doc(**kw: Any) -> dict[str, Any]:
    return {"@context": "https://www.w3.org/ns/activitystreams", **kw}


async def follow_state(inst: Instance, follower: str, followee: str) -> str | None:
    async with inst.session() as s:
        q = (select(Follow.state).join(Actor, Actor.id == Follow.follower_id)
             .where(Actor.uri == follower)
             .where(Follow.followee_id == select(Actor.id).where(Actor.uri == followee)
                    .scalar_subquery()))
        return (await s.execute(q)).scalar()


async def approve_member(a: Instance, coop: str, follower: str) -> None:
    async def pending() -> bool:
        return await follow_state(a, follower, coop) == "pending"

    await eventually(pending, what=f"pending request of {follower}")

    async def go(ctx: Context, s: AsyncSession) -> None:
        alice = (await s.execute(select(Actor).where(Actor.uri == ctx.uris.user("alice")))
                 ).scalar_one()
        group = (await s.execute(select(Actor).where(Actor.uri == coop))).scalar_one()
        them = (await s.execute(select(Actor).where(Actor.uri == follower))).scalar_one()
        await approve(ctx, s, alice, group, them)

    await a.run(go)


async def peer_joins(a: Instance, coop: str, actor: PeerActor) -> None:
    fid = f"{actor.peer.base}/follows/{actor.name}"
    status, _ = await actor.post(f"{a.base}/inbox", ctx_doc(
        id=fid, type="Follow", actor=actor.id, object=coop))
    assert status == 202
    await approve_member(a, coop, actor.id)
    await wait_received(actor.peer, 1, "Accept")


async def local_key(inst: Instance, uri: str) -> tuple[str, str]:
    async with inst.session() as s:
        row = (await s.execute(select(Actor.key_id, Actor.private_key_pem)
                               .where(Actor.uri == uri))).one()
        return str(row[0]), str(row[1])


async def get_status(url: str, key: tuple[str, str] | None) -> tuple[int, Any]:
    """GET `url` as AS2, unsigned (key None) or signed with (key id, private key PEM)."""
    if key is None:
        headers = {"Accept": AS2}
    else:
        headers = sign_headers("GET", url, key_id=key[0], private_key=load_private_key(key[1]))
    async with ClientSession() as http, http.get(url, headers=headers) as r:
        body = await r.read()
        return r.status, (orjson.loads(body) if body and r.status < 300 else None)


def peer_key(actor: PeerActor) -> tuple[str, str]:
    return actor.key_id, actor.private_pem


async def private_setup(instances: StartInstance) -> tuple[Instance, Instance, str, str]:
    """A with alice and the private cooperative `secret`; B with bob, an accepted member."""
    a = await instances("127.0.0.2")
    b = await instances("127.0.0.3")
    await a.create_user("alice")
    coop = await a.create_coop("secret", "alice", private=True)
    bob = await b.create_user("bob")

    async def bob_follows(ctx: Context, s: AsyncSession) -> None:
        await follow(ctx, s, "bob", f"secret@{a.domain}")

    await b.run(bob_follows)
    await approve_member(a, coop, bob)

    async def accepted() -> bool:
        return await follow_state(b, bob, coop) == "accepted"

    await eventually(accepted, what="B got the Accept")
    return a, b, coop, bob


async def stored(inst: Instance, uri: str) -> Object | None:
    async with inst.session() as s:
        return (await s.execute(select(Object).where(Object.uri == uri))).scalar()


# ---- tests ------------------------------------------------------------------------------------


async def test_private_content_is_readable_and_delivered_to_members_only(
    instances: StartInstance,
) -> None:
    a, b, coop, bob = await private_setup(instances)
    await b.create_user("brian")  # on a member's server, but not a member
    mast = await NodeInfoPeer("127.0.0.5").start()
    former = await Peer("127.0.0.6").start()
    banned = await Peer("127.0.0.7").start()
    outsider = await Peer("127.0.0.8").start()
    try:
        status, doc = await get_status(coop, None)  # the actor itself stays public
        assert status == 200
        assert doc["manuallyApprovesFollowers"] is True and doc["discoverable"] is False

        mona = mast.actor("mona")
        fiona = former.actor("fiona", key_index=1)
        xavier = banned.actor("xavier", key_index=2)
        otto = outsider.actor("otto", key_index=3)
        for who in (mona, fiona, xavier):
            await peer_joins(a, coop, who)
        # otto follows alice herself: her posts into the private cooperative must not reach
        # her own followers.
        assert (await otto.post(f"{a.base}/inbox", ctx_doc(
            id=f"{outsider.base}/follows/otto", type="Follow", actor=otto.id,
            object=a.ctx.uris.user("alice"))))[0] == 202
        await wait_received(outsider, 1, "Accept")
        # fiona leaves; xavier is banned (his follow row stays: the ban alone must count).
        status, _ = await fiona.post(f"{a.base}/inbox", ctx_doc(
            id=f"{former.base}/undo/1", type="Undo", actor=fiona.id,
            object={"id": f"{former.base}/follows/fiona", "type": "Follow",
                    "actor": fiona.id, "object": coop}))
        assert status == 202

        async def fiona_gone() -> bool:
            return await follow_state(a, fiona.id, coop) is None

        await eventually(fiona_gone, what="fiona's membership removed")

        async def ban(ctx: Context, s: AsyncSession) -> None:
            group = (await s.execute(select(Actor.id).where(Actor.uri == coop))).scalar_one()
            x = (await s.execute(select(Actor.id).where(Actor.uri == xavier.id))).scalar_one()
            s.add(CoopBan(coop_actor_id=group, actor_id=x, reason="test"))

        await a.run(ban)
        async with a.session() as s:
            before = (await s.execute(select(Delivery.id).order_by(Delivery.id.desc()))
                      ).scalars().first() or 0

        async def post(ctx: Context, s: AsyncSession) -> str:
            return (await local_post(ctx, s, "alice", "secret", "Réunion secrète mardi")).uri

        note = await a.run(post)
        copy = (await wait_received(mast, 1, "Create"))[0]
        on_b = await eventually(lambda: stored(b, note), what="note stored on B")
        assert "Réunion secrète mardi" in (on_b.content or "")

        async with a.session() as s:
            create_uri = (await s.execute(select(Activity.uri).where(
                Activity.type == "Create", Activity.object_uri == note))).scalar_one()
            announce_uri = (await s.execute(select(Activity.uri).where(
                Activity.type == "Announce", Activity.object_uri == create_uri))).scalar_one()
            rows = (await s.execute(select(Delivery.host, Delivery.inbox, Activity.type)
                                    .join(Activity, Activity.id == Delivery.activity_id)
                                    .where(Delivery.id > before))).all()
        # Only members' servers got anything: B (Announce) and the Mastodon-like peer (copy).
        assert {(h, t) for h, _, t in rows} == {(b.domain, "Announce"), (mast.domain, "Create")}
        assert {i for _, i, _ in rows} == {f"{b.base}/inbox", f"{mast.base}/inbox"}

        urls = [note, create_uri, announce_uri, copy["object"]["id"], f"{coop}/outbox",
                f"{coop}/outbox?page=true", f"{coop}/followers", f"{coop}/moderators"]
        brian = await local_key(b, b.ctx.uris.user("brian"))
        refused = {"anonymous": None, "server without members": peer_key(otto),
                   "former member": peer_key(fiona), "banned member": peer_key(xavier),
                   "non-member on a member's server": brian}
        allowed = {"member (Mastodon-like)": peer_key(mona),
                   "member (t3r1)": await local_key(b, bob),
                   "member's instance actor": await local_key(b, b.ctx.uris.instance_actor)}
        for url in urls:
            for who, key in refused.items():
                assert (await get_status(url, key))[0] == 404, (who, url)
            for who, key in allowed.items():
                assert (await get_status(url, key))[0] == 200, (who, url)
        status, page = await get_status(f"{coop}/outbox?page=true", peer_key(mona))
        assert {i["id"] for i in page["orderedItems"]} >= {announce_uri}
        for peer in (former, banned, outsider):
            assert not [x for x in peer.activities() if x.get("type") in CONTENT_TYPES], peer
    finally:
        for p in (mast, former, banned, outsider):
            await p.stop()


async def test_mastodon_members_get_group_copies_and_1b12_members_announces(
    instances: StartInstance,
) -> None:
    a, b, coop, _ = await private_setup(instances)
    mast = await NodeInfoPeer("127.0.0.5").start()
    plain = await Peer("127.0.0.6").start()  # no NodeInfo: software unknown
    try:
        mona = mast.actor("mona")
        await peer_joins(a, coop, mona)
        await peer_joins(a, coop, plain.actor("pat", key_index=1))
        followers = f"{coop}/followers"

        # alice posts: the Mastodon-like server gets a copy authored by the group.
        async def post(ctx: Context, s: AsyncSession) -> str:
            return (await local_post(ctx, s, "alice", "secret", "Grève jeudi")).uri

        note = await a.run(post)
        create = (await wait_received(mast, 1, "Create"))[0]
        copy = create["object"]
        assert create["actor"] == coop and copy["attributedTo"] == coop
        assert create["to"] == [followers] and copy["to"] == [followers]
        assert copy["url"] == note and copy["id"] != note
        alice_url = f"{a.base}/@alice"
        assert copy["content"].startswith(
            f'<p>Par <a href="{alice_url}">@alice@{a.domain}</a> :</p>')
        assert "Grève jeudi" in copy["content"]
        assert AS_PUBLIC not in str(create)
        assert not mast.activities("Announce")  # Mastodon cannot show an Announce(activity)
        status, served = await get_status(copy["id"], peer_key(mona))
        assert status == 200 and served["id"] == copy["id"]
        # B (t3r1-fed, FEP-1b12) got Announce(Create), fetched the note signed and stored it.
        on_b = await eventually(lambda: stored(b, note), what="note stored on B")
        assert on_b.visibility == "private" and "Grève jeudi" in (on_b.content or "")

        # B's resolver fetches from the origin signed by B's instance actor: A allows it.
        async def fetch_from_b(ctx: Context, s: AsyncSession) -> dict[str, Any]:
            return await fetch_document(ctx, s, note)

        fetched = await b.run(fetch_from_b)
        assert fetched["id"] == note and "Grève jeudi" in fetched["content"]
        async with a.session() as s:
            software = dict((await s.execute(select(Host.domain, Host.software))).all())
        assert software[mast.domain] == "mastodon" and software[b.domain] == "t3r1-fed"
        assert software[plain.domain] is None  # asked, unreadable: it gets both forms
        assert (await wait_received(plain, 1, "Create"))[0]["object"]["id"] == copy["id"]
        assert (await wait_received(plain, 1, "Announce"))[0]["object"]["object"]["id"] == note

        # A public post into the private cooperative is refused.
        public = mast.note(mona, "Tout le monde !", to=[AS_PUBLIC], cc=[coop],
                           tag=[{"type": "Mention", "href": coop}])
        pub_create = ctx_doc(id=public["id"] + "/create", type="Create", actor=mona.id,
                             object=public, to=public["to"], cc=public["cc"])
        assert (await mona.post(f"{coop}/inbox", pub_create))[0] == 202
        reject = (await wait_received(mast, 1, "Reject"))[0]
        assert reject["actor"] == coop and reject["object"] == pub_create["id"]

        # mona answers the copy she sees, followers-only with the group mentioned (what
        # Mastodon does): a reply to the original on A, redistributed to every member.
        private = mast.note(mona, "Je serai là", to=[f"{mona.id}/followers"], cc=[coop],
                            tag=[{"type": "Mention", "href": coop}], in_reply_to=copy["id"])
        assert (await mona.post(f"{coop}/inbox", ctx_doc(
            id=private["id"] + "/create", type="Create", actor=mona.id, object=private,
            to=private["to"], cc=private["cc"])))[0] == 202
        creates = await wait_received(mast, 2, "Create")
        reply_copy = creates[1]["object"]
        assert reply_copy["url"] == private["id"]
        assert reply_copy["inReplyTo"] == copy["id"]  # threaded on the group's copy
        assert f"@mona@{mast.domain}" in reply_copy["content"]
        await eventually(lambda: stored(b, private["id"]), what="mona's post on B")
        on_a, original = await stored(a, private["id"]), await stored(a, note)
        assert on_a is not None and original is not None
        assert on_a.in_reply_to == note and on_a.thread_id == original.id
        assert on_a.group_id == original.group_id

        # mona edits: the copy is updated at Mastodon, B refetches the original.
        mast.objects[private["id"]] = {**private, "content": "<p>Je serai là à 18h</p>",
                                       "updated": "2026-11-28T13:00:00Z"}
        assert (await mona.post(f"{coop}/inbox", ctx_doc(
            id=private["id"] + "/update", type="Update", actor=mona.id,
            object=mast.objects[private["id"]], to=private["to"], cc=private["cc"])))[0] == 202
        update = (await wait_received(mast, 1, "Update"))[0]
        assert update["object"]["id"] == reply_copy["id"]
        assert "à 18h" in update["object"]["content"]

        async def updated_on_b() -> bool:
            obj = await stored(b, private["id"])
            return obj is not None and "à 18h" in (obj.content or "")

        await eventually(updated_on_b, what="update applied on B")

        # alice deletes her post: Mastodon gets the copy's Delete, B tombstones the note.
        async def delete(ctx: Context, s: AsyncSession) -> None:
            await local_delete(ctx, s, "alice", note)

        await a.run(delete)
        gone = (await wait_received(mast, 1, "Delete"))[0]
        assert gone["actor"] == coop and gone["object"]["id"] == copy["id"]

        async def deleted_on_b() -> bool:
            obj = await stored(b, note)
            return obj is not None and obj.deleted_at is not None

        await eventually(deleted_on_b, what="delete applied on B")
        assert (await get_status(copy["id"], peer_key(mona)))[0] == 410
        assert (await get_status(copy["id"], None))[0] == 404
    finally:
        await mast.stop()
        await plain.stop()
