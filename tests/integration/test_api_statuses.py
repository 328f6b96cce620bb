"""POST /api/v1/statuses and the status actions, driven by the real Mastodon.py client
against real instances on loopback: a member of instance A mentions a cooperative of
instance B and the status becomes a post of that cooperative, redistributed by B and seen
as the group's boost in another member's home timeline; replies join the thread;
Idempotency-Key; scopes; private cooperatives; deletion; favourites across instances;
boosts; personal posts and their visibility; polls."""

from __future__ import annotations

import asyncio
import io
import re
from typing import Any

import pytest
from aiohttp import ClientSession
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.follows import follow
from t3r1_fed.context import Context
from t3r1_fed.coops.membership import group_actor, join, user_actor
from t3r1_fed.db.models import Activity, Actor, Follow, Like, Mention, Object, Share
from t3r1_fed.db.models_api import IdempotencyKey
from tests.conftest import StartInstance
from tests.integration.accounts_api_support import token
from tests.testrig import Instance, eventually

pytestmark = pytest.mark.federation

mastodon = pytest.importorskip("mastodon")
Mastodon: Any = mastodon.Mastodon


async def app_client(inst: Instance, user: str, scope: str = "read write follow") -> Any:
    return Mastodon(access_token=await token(inst, user, scope), api_base_url=inst.base,
                    version_check_mode="none")


async def call(fn: Any, *args: Any, **kw: Any) -> Any:
    """Mastodon.py is synchronous: run it in a thread."""
    return await asyncio.to_thread(fn, *args, **kw)


async def api(inst: Instance, method: str, path: str, tok: str | None = None,
              **kw: Any) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    headers.update(kw.pop("headers", {}))
    async with ClientSession() as http, http.request(
        method, inst.base + path, headers=headers, **kw
    ) as r:
        return r.status, await r.json()


def text_of(status: Any) -> str:
    return re.sub(r"<[^>]+>", "", status["content"]).strip()


async def count(inst: Instance, stmt: Any) -> int:
    async def go(ctx: Context, s: AsyncSession) -> int:
        return int((await s.execute(stmt)).scalar_one())

    return await inst.run(go)


async def _until(inst: Instance, stmt: Any, want: int = 1, what: str = "") -> None:
    async def check() -> bool:
        return await count(inst, stmt) >= want

    await eventually(check, what=what or str(stmt))


async def test_post_into_a_remote_cooperative_with_mastodon_py(
    instances: StartInstance,
) -> None:
    a = await instances("127.0.0.2", oauth_password_grant="1")
    b = await instances("127.0.0.3")
    for name in ("alice", "bob", "dave"):
        await a.create_user(name)
    await b.create_user("carol")
    await b.create_coop("fed", "carol")

    # bob is a member of the cooperative of instance B.
    await a.run(lambda ctx, s: follow(ctx, s, "bob", f"fed@{b.domain}"))
    await _until(a, select(func.count()).select_from(Follow)
                 .where(Follow.state == "accepted"), what="bob's membership accepted")

    alice = await app_client(a, "alice")
    bob = await app_client(a, "bob")

    # alice mentions the cooperative: the status becomes a post of coop B.
    st = await call(alice.status_post, f"@fed@{b.domain} Grève le 5 #syndicat",
                    idempotency_key="cle-1")
    assert "Grève le 5" in text_of(st)
    assert [t["name"] for t in st["tags"]] == ["syndicat"]
    assert st["visibility"] == "public"
    # The same Idempotency-Key gives the same status and creates nothing.
    again = await call(alice.status_post, f"@fed@{b.domain} Grève le 5 #syndicat",
                       idempotency_key="cle-1")
    assert str(again["id"]) == str(st["id"])
    mine = select(func.count()).select_from(Object).where(
        Object.author_id == select(Actor.id).where(Actor.username == "alice")
        .scalar_subquery())
    assert await count(a, mine) == 1
    assert await count(a, select(func.count()).select_from(IdempotencyKey)) == 1

    async def uri_of(ctx: Context, s: AsyncSession) -> tuple[str, int | None]:
        row = (await s.execute(select(Object).where(Object.sid == int(st["id"])))).scalar_one()
        return row.uri, row.group_id

    uri, group_id = await a.run(uri_of)
    assert group_id is not None  # filed under the remote group here too

    # B stores it as a post of its cooperative and redistributes it (Announce by the group).
    fed_posts = select(func.count()).select_from(Object).where(
        Object.uri == uri, Object.group_id.is_not(None))
    await _until(b, fed_posts, what="post filed in coop B")
    await _until(b, select(func.count()).select_from(Activity).where(
        Activity.type == "Announce", Activity.object_uri == uri), what="B's Announce")
    assert await count(b, select(func.count()).select_from(Share).join(
        Object, Object.id == Share.object_id).join(Actor, Actor.id == Share.actor_id)
        .where(Object.uri == uri, Actor.username == "fed")) == 1
    # … and bob, member of the cooperative, sees it as the group's boost in his home.

    async def in_home() -> Any:
        feed = await call(bob.timeline_home)
        return next((x for x in feed if x["reblog"] and str(x["reblog"]["id"]) == str(st["id"])),
                    None)

    boost = await eventually(in_home, what="the group's boost in bob's home")
    assert boost["account"]["acct"] == f"fed@{b.domain}"

    # bob replies from his app: the reply lands in the cooperative's thread on B.
    rep = await call(bob.status_post, "Je viens aussi", in_reply_to_id=st["id"])
    assert str(rep["in_reply_to_id"]) == str(st["id"])
    await _until(b, select(func.count()).select_from(Object).where(
        Object.in_reply_to == uri, Object.group_id.is_not(None)), what="reply on B")
    ctx_doc = await call(alice.status_context, st["id"])
    assert [str(x["id"]) for x in ctx_doc["descendants"]] == [str(rep["id"])]
    up = await call(bob.status_context, rep["id"])
    assert [str(x["id"]) for x in up["ancestors"]] == [str(st["id"])]

    # Favourite and boost from A; a favourite of a post of B reaches B (Like row there).
    fav = await call(bob.status_favourite, st["id"])
    assert fav["favourited"] is True and fav["favourites_count"] == 1
    fav = await call(bob.status_favourite, st["id"])  # idempotent
    assert fav["favourites_count"] == 1
    who = await call(alice.status_favourited_by, st["id"])
    assert [x["username"] for x in who] == ["bob"]
    rb = await call(bob.status_reblog, st["id"])
    assert str(rb["reblog"]["id"]) == str(st["id"]) and rb["account"]["username"] == "bob"
    # The cooperative's redistribution is a boost too.
    boosters = await call(alice.status_reblogged_by, st["id"])
    assert sorted(x["username"] for x in boosters) == ["bob", "fed"]
    # A boost id designates the original.
    assert (await call(alice.status, rb["id"]))["reblog"]["id"] == st["id"]
    un = await call(bob.status_unreblog, st["id"])
    assert un["reblogged"] is False and un["reblogs_count"] == 1

    await b.run(lambda ctx, s: _local_post(ctx, s, "carol", "fed", "Congrès fédéral"))

    async def carols() -> Any:
        feed = await call(bob.timeline_home)
        return next((x for x in feed if x["reblog"] and "Congrès" in text_of(x["reblog"])), None)

    carol_boost = await eventually(carols, what="carol's post in bob's home")
    await call(bob.status_favourite, carol_boost["reblog"]["id"])
    await _until(b, select(func.count()).select_from(Like), what="Like row on B")

    # Someone else's status cannot be deleted (404); the author's can.
    with pytest.raises(mastodon.MastodonNotFoundError):
        await call(bob.status_delete, st["id"])
    gone = await call(alice.status_delete, st["id"])
    assert gone["text"] == f"@fed@{b.domain} Grève le 5 #syndicat"
    with pytest.raises(mastodon.MastodonNotFoundError):
        await call(bob.status, st["id"])
    await _until(b, select(func.count()).select_from(Object).where(
        Object.uri == uri, Object.deleted_at.is_not(None)), what="deletion reached B")

    # A personal post with an image uploaded through the media API.
    png = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 60)).save(png, format="PNG")
    media = await call(alice.media_post, png.getvalue(), mime_type="image/png",
                       description="Affiche", file_name="affiche.png")
    pic = await call(alice.status_post, "Notre affiche", media_ids=[media["id"]],
                     sensitive=True, visibility="unlisted")
    assert [m["description"] for m in pic["media_attachments"]] == ["Affiche"]
    assert pic["sensitive"] is True and pic["visibility"] == "unlisted"
    with pytest.raises(mastodon.MastodonAPIError):  # already attached: 422
        await call(alice.status_post, "Encore", media_ids=[media["id"]])
    seen = await call(bob.status, pic["id"])
    assert seen["media_attachments"][0]["id"] == media["id"]
    # Editing replaces the image: the old upload is free again.
    png2 = io.BytesIO()
    Image.new("RGB", (32, 32), (0, 90, 200)).save(png2, format="PNG")
    media2 = await call(alice.media_post, png2.getvalue(), mime_type="image/png",
                        file_name="nouvelle.png")
    upd = await call(alice.status_update, pic["id"], "Nouvelle affiche", media_ids=[media2["id"]])
    assert [m["id"] for m in upd["media_attachments"]] == [media2["id"]]
    assert "Nouvelle affiche" in text_of(upd) and upd["edited_at"]
    again_pic = await call(alice.status_post, "Encore", media_ids=[media["id"]])
    assert [m["id"] for m in again_pic["media_attachments"]] == [media["id"]]

    # A read-only token cannot post.
    ro = await token(a, "dave", "read")
    status, body = await api(a, "POST", "/api/v1/statuses", ro, data={"status": "x"})
    assert status == 403 and "error" in body


async def _local_post(ctx: Context, s: AsyncSession, user: str, coop: str, text: str) -> None:
    from t3r1_fed.coops.posting import local_post

    await local_post(ctx, s, user, coop, text)


async def test_personal_posts_private_coops_polls_and_errors(instances: StartInstance) -> None:
    a = await instances("127.0.0.2", oauth_password_grant="1")
    for name in ("alice", "bob", "dave"):
        await a.create_user(name)
    await a.create_coop("secret", "alice", private=True)
    await a.create_coop("ouverte", "alice")

    async def memberships(ctx: Context, s: AsyncSession) -> None:
        await join(ctx, s, await user_actor(s, "bob"), await group_actor(s, "ouverte"))

    await a.run(memberships)
    ta, tb, td = [await token(a, u) for u in ("alice", "bob", "dave")]

    # A personal post (no cooperative), form-encoded, with a content warning.
    status, st = await api(a, "POST", "/api/v1/statuses", ta, data={
        "status": "Bonjour @bob #solidarité", "spoiler_text": "annonce", "language": "fr"})
    assert status == 200, st
    assert st["spoiler_text"] == "annonce" and st["sensitive"] is True
    assert st["language"] == "fr"
    assert [m["username"] for m in st["mentions"]] == ["bob"]
    assert st["account"]["username"] == "alice" and st["reblog"] is None
    status, src = await api(a, "GET", f"/api/v1/statuses/{st['id']}/source", ta)
    assert src["text"] == "Bonjour @bob #solidarité" and src["spoiler_text"] == "annonce"
    status, got = await api(a, "GET", f"/api/v1/statuses/{st['id']}")
    assert status == 200 and got["id"] == st["id"]

    # Direct: seen by the author and the mentioned member only (404 for others).
    status, dm = await api(a, "POST", "/api/v1/statuses", ta,
                           json={"status": "@bob message privé", "visibility": "direct"})
    assert status == 200 and dm["visibility"] == "direct"
    assert (await api(a, "GET", f"/api/v1/statuses/{dm['id']}", tb))[0] == 200
    assert (await api(a, "GET", f"/api/v1/statuses/{dm['id']}", td))[0] == 404
    assert (await api(a, "GET", f"/api/v1/statuses/{dm['id']}"))[0] == 404
    assert await count(a, select(func.count()).select_from(Mention)) >= 2
    status, many = await api(a, "GET", f"/api/v1/statuses?id[]={st['id']}&id[]={dm['id']}",
                             td)
    assert [x["id"] for x in many] == [st["id"]]

    # A private cooperative takes private or direct statuses only: 422 says why.
    status, err = await api(a, "POST", "/api/v1/statuses", ta,
                            data={"status": "@secret réunion demain"})
    assert status == 422 and "private cooperative" in err["error"]
    status, ok = await api(a, "POST", "/api/v1/statuses", ta,
                           data={"status": "@secret réunion demain", "visibility": "private"})
    assert status == 200 and ok["visibility"] == "private"
    assert (await api(a, "GET", f"/api/v1/statuses/{ok['id']}", td))[0] == 404
    # A public cooperative refuses a followers-only status.
    status, err = await api(a, "POST", "/api/v1/statuses", tb,
                            data={"status": "@ouverte salut", "visibility": "private"})
    assert status == 422 and "public cooperative" in err["error"]
    status, post = await api(a, "POST", "/api/v1/statuses", tb, data={"status": "@ouverte salut"})
    assert status == 200

    async def in_coop(ctx: Context, s: AsyncSession) -> list[str | None]:
        rows = (await s.execute(
            select(Actor.username).join(Object, Object.group_id == Actor.id)
            .where(Object.sid.in_([int(ok["id"]), int(post["id"])])).order_by(Object.sid)
        )).scalars()
        return list(rows)

    assert await a.run(in_coop) == ["secret", "ouverte"]
    # The cooperative redistributed bob's post: a Share by the group.
    assert await count(a, select(func.count()).select_from(Share).join(
        Object, Object.id == Share.object_id).where(Object.sid == int(post["id"]))) == 1

    # Replies in a cooperative's thread; context; two cooperatives at once are refused.
    status, rep = await api(a, "POST", "/api/v1/statuses", ta,
                            data={"status": "Bienvenue", "in_reply_to_id": post["id"]})
    assert status == 200 and rep["in_reply_to_id"] == post["id"]
    assert await a.run(lambda ctx, s: _group_of(s, int(rep["id"]))) == "ouverte"
    status, err = await api(a, "POST", "/api/v1/statuses", ta,
                            data={"status": "@ouverte @secret double"})
    assert status == 422 and "one cooperative" in err["error"]

    # Errors: scheduled posts, empty text, bad visibility, unknown parent, polls.
    for data, code in [({"status": "x", "scheduled_at": "2030-01-01T00:00:00Z"}, 422),
                       ({"status": "  "}, 422), ({"status": "x", "visibility": "all"}, 422),
                       ({"status": "x", "in_reply_to_id": "12"}, 404),
                       ({"status": "?", "poll[options][]": "un",
                         "poll[expires_in]": "3600"}, 422)]:
        status, err = await api(a, "POST", "/api/v1/statuses", ta, data=data)
        assert status == code and "error" in err, (data, err)
    # Two concurrent requests with one Idempotency-Key: one status, both get it.
    (s1, d1), (s2, d2) = await asyncio.gather(*(
        api(a, "POST", "/api/v1/statuses", ta, data={"status": "une seule fois"},
            headers={"Idempotency-Key": "k"}) for _ in range(2)))
    assert s1 == s2 == 200 and d1["id"] == d2["id"]
    assert await count(a, select(func.count()).select_from(Object)
                       .where(Object.content.like("%une seule fois%"))) == 1

    # A poll (personal), voted by bob; a second vote is refused.
    status, poll_st = await api(a, "POST", "/api/v1/statuses", ta, json={
        "status": "Quelle date ?", "poll": {"options": ["lundi", "mardi"],
                                            "expires_in": 3600}})
    assert status == 200, poll_st
    pid = poll_st["poll"]["id"]
    status, voted = await api(a, "POST", f"/api/v1/polls/{pid}/votes", tb,
                              data={"choices[]": "1"})
    assert status == 200, voted
    assert voted["own_votes"] == [1] and voted["options"][1]["votes_count"] == 1
    status, err = await api(a, "POST", f"/api/v1/polls/{pid}/votes", tb,
                            data={"choices[]": "0"})
    assert status == 422
    status, seen = await api(a, "GET", f"/api/v1/polls/{pid}")
    assert seen["votes_count"] == 1 and "own_votes" not in seen

    # Edit: new text, Update sent; the source follows.
    status, edited = await api(a, "PUT", f"/api/v1/statuses/{st['id']}", ta,
                               data={"status": "Bonjour à tous #grève"})
    assert status == 200, edited
    assert "Bonjour à tous" in text_of(edited) and edited["edited_at"]
    assert [t["name"] for t in edited["tags"]] == ["grève"]
    assert await count(a, select(func.count()).select_from(Activity)
                       .where(Activity.type == "Update")) >= 1
    status, err = await api(a, "PUT", f"/api/v1/statuses/{st['id']}", tb,
                            data={"status": "pirate"})
    assert status == 404

    # A poll into a cooperative; editing a cooperative's post (announced by the group).
    status, coop_poll = await api(a, "POST", "/api/v1/statuses", tb, data={
        "status": "@ouverte Grève ?", "poll[options][]": ["oui", "non"],
        "poll[expires_in]": "600", "poll[multiple]": "true"})
    assert status == 200, coop_poll
    assert coop_poll["poll"]["multiple"] is True
    assert [o["title"] for o in coop_poll["poll"]["options"]] == ["oui", "non"]
    assert await a.run(lambda ctx, s: _group_of(s, int(coop_poll["id"]))) == "ouverte"
    status, edited = await api(a, "PUT", f"/api/v1/statuses/{post['id']}", tb,
                               json={"status": "@ouverte salut à tous", "spoiler_text": "cw"})
    assert status == 200, edited
    assert "salut à tous" in text_of(edited) and edited["spoiler_text"] == "cw"
    assert await a.run(lambda ctx, s: _group_of(s, int(post["id"]))) == "ouverte"

    # Boosting a private status is refused; deleting someone else's is a 404.
    status, err = await api(a, "POST", f"/api/v1/statuses/{ok['id']}/reblog", ta)
    assert status == 422
    status, err = await api(a, "DELETE", f"/api/v1/statuses/{st['id']}", tb)
    assert status == 404
    status, gone = await api(a, "DELETE", f"/api/v1/statuses/{ok['id']}", ta)
    assert status == 200 and gone["text"] == "@secret réunion demain"
    assert (await api(a, "GET", f"/api/v1/statuses/{ok['id']}", ta))[0] == 404


async def _group_of(s: AsyncSession, sid: int) -> str | None:
    return (await s.execute(
        select(Actor.username).join(Object, Object.group_id == Actor.id).where(Object.sid == sid)
    )).scalar()
