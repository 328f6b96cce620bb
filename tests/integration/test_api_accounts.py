"""The account side of the Mastodon client API on real instances: get and lookup, an
account's statuses (a cooperative's redistributions, pinned, tagged, paginated), followers
and following with Link headers, relationships, follow options, private cooperatives'
members hidden, follow requests of a moderated cooperative decided from the API, scopes."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.coops.membership import group_actor, user_actor
from t3r1_fed.coops.moderation import set_pinned
from t3r1_fed.coops.news import publish_news
from t3r1_fed.coops.posting import local_post
from t3r1_fed.media.upload import upload
from tests.conftest import StartInstance
from tests.integration.accounts_api_support import call, link, token
from tests.testrig import Instance

pytestmark = pytest.mark.federation


async def account_id(inst: Instance, acct: str) -> str:
    status, doc, _ = await call(inst, "GET", "/api/v1/accounts/lookup", params={"acct": acct})
    assert status == 200, doc
    return str(doc["id"])


async def test_get_lookup_statuses_and_404(instances: StartInstance) -> None:
    a = await instances("127.0.0.2", oauth_password_grant="1")
    await a.create_user("alice")
    await a.create_coop("syndic", "alice", title="Le syndicat")

    posts: list[str] = []

    async def post(ctx: Context, s: AsyncSession) -> None:
        alice = await user_actor(s, "alice")
        for text in ("premier", "deuxième #grève", "troisième"):
            posts.append((await publish_news(ctx, s, alice, "syndic", text)).uri)

    await a.run(post)

    async def pin(ctx: Context, s: AsyncSession) -> None:
        await set_pinned(ctx, s, await user_actor(s, "alice"), await group_actor(s, "syndic"),
                         posts[0], True)

    await a.run(pin)

    alice = await account_id(a, "alice")
    assert await account_id(a, f"@alice@{a.domain}") == alice
    syndic = await account_id(a, "syndic")
    status, doc, _ = await call(a, "GET", f"/api/v1/accounts/{syndic}")
    assert status == 200 and doc["group"] is True and doc["acct"] == "syndic"
    assert doc["display_name"] == "Le syndicat"
    for bad in ("nobody", "alice@elsewhere.example", ""):
        status, doc, _ = await call(a, "GET", "/api/v1/accounts/lookup", params={"acct": bad})
        assert status == 404 and doc == {"error": "Record not found"}
    status, doc, _ = await call(a, "GET", "/api/v1/accounts/987654321")
    assert status == 404 and "error" in doc

    # A token is optional; one that is given must grant the scope.
    writer = await token(a, "alice", "write:statuses")
    status, _, _ = await call(a, "GET", f"/api/v1/accounts/{alice}", writer)
    assert status == 403
    reader = await token(a, "alice", "read:accounts read:statuses")
    status, doc, _ = await call(a, "GET", f"/api/v1/accounts/{alice}/", reader)
    assert status == 200 and doc["username"] == "alice" and doc["statuses_count"] == 3

    # Alice's posts, newest first, two by two through the Link header.
    status, page1, hdr = await call(a, "GET", f"/api/v1/accounts/{alice}/statuses",
                                    params={"limit": "2"})
    assert status == 200 and [s["uri"] for s in page1] == posts[:0:-1]
    nxt = link(hdr, "next")
    assert nxt is not None and link(hdr, "prev") is not None
    status, page2, hdr = await call(a, "GET", nxt)
    assert [s["uri"] for s in page2] == posts[:1]
    status, page3, _ = await call(a, "GET", link(hdr, "next") or "")
    assert status == 200 and page3 == []
    status, newer, _ = await call(a, "GET", f"/api/v1/accounts/{alice}/statuses",
                                  params={"min_id": page2[0]["id"]})
    assert [s["uri"] for s in newer] == posts[:0:-1]

    # The cooperative's statuses are its redistributions: boosts of the members' posts.
    status, coop_statuses, _ = await call(a, "GET", f"/api/v1/accounts/{syndic}/statuses")
    assert status == 200 and len(coop_statuses) == 3
    assert all(s["reblog"] is not None and s["account"]["id"] == syndic
               for s in coop_statuses)
    assert [s["reblog"]["uri"] for s in coop_statuses] == posts[::-1]
    status, none, _ = await call(a, "GET", f"/api/v1/accounts/{syndic}/statuses",
                                 params={"exclude_reblogs": "true"})
    assert status == 200 and none == []
    status, pinned, _ = await call(a, "GET", f"/api/v1/accounts/{syndic}/statuses",
                                   params={"pinned": "true"})
    assert [s["uri"] for s in pinned] == posts[:1]
    status, tagged, _ = await call(a, "GET", f"/api/v1/accounts/{alice}/statuses",
                                   params={"tagged": "grève"})
    assert [s["uri"] for s in tagged] == posts[1:2]
    status, media, _ = await call(a, "GET", f"/api/v1/accounts/{alice}/statuses",
                                  params={"only_media": "1"})
    assert status == 200 and media == []

    # A self-reply with an image, a reply to someone else: only_media, exclude_replies.
    await a.create_user("bob")

    async def replies(ctx: Context, s: AsyncSession) -> tuple[str, str]:
        alice_actor = await user_actor(s, "alice")
        image = io.BytesIO()
        Image.new("RGB", (32, 24), (200, 30, 30)).save(image, format="PNG")
        media_row = await upload(ctx, s, alice_actor, image.getvalue(), description="affiche")
        own = await local_post(ctx, s, "alice", "syndic", "suite", in_reply_to=posts[2],
                               media_ids=[media_row.id])
        bobs = await local_post(ctx, s, "bob", "syndic", "question")
        other = await local_post(ctx, s, "alice", "syndic", "réponse", in_reply_to=bobs.uri)
        return own.uri, other.uri

    own_reply, other_reply = await a.run(replies)
    status, media, _ = await call(a, "GET", f"/api/v1/accounts/{alice}/statuses",
                                  params={"only_media": "true"})
    assert [s["uri"] for s in media] == [own_reply]
    assert media[0]["media_attachments"][0]["description"] == "affiche"
    status, all_posts, _ = await call(a, "GET", f"/api/v1/accounts/{alice}/statuses")
    assert [s["uri"] for s in all_posts] == [other_reply, own_reply, *posts[::-1]]
    status, no_replies, _ = await call(a, "GET", f"/api/v1/accounts/{alice}/statuses",
                                       params={"exclude_replies": "true"})
    assert [s["uri"] for s in no_replies] == [own_reply, *posts[::-1]]
    status, doc, _ = await call(a, "GET", f"/api/v1/accounts/{alice}/statuses",
                                params={"pinned": "peut-être"})
    assert status == 400 and "error" in doc


async def test_follow_relationships_pagination_and_scopes(instances: StartInstance) -> None:
    a = await instances("127.0.0.2", oauth_password_grant="1")
    for name in ("alice", "u1", "u2", "u3"):
        await a.create_user(name)
    toks = {n: await token(a, n) for n in ("alice", "u1", "u2", "u3")}
    alice = await account_id(a, "alice")

    # Following needs write:follows (or write / follow): a read token gets 403.
    read_only = await token(a, "u1", "read")
    status, doc, _ = await call(a, "POST", f"/api/v1/accounts/{alice}/follow", read_only)
    assert status == 403 and "error" in doc
    status, _, _ = await call(a, "POST", f"/api/v1/accounts/{alice}/follow")
    assert status == 401
    granular = await token(a, "u1", "write:follows read:follows")
    status, rel, _ = await call(a, "POST", f"/api/v1/accounts/{alice}/follow", granular,
                                json={"reblogs": False, "notify": True})
    assert status == 200 and rel["following"] is True and rel["id"] == alice
    assert rel["showing_reblogs"] is False and rel["notifying"] is True
    for name in ("u2", "u3"):
        status, rel, _ = await call(a, "POST", f"/api/v1/accounts/{alice}/follow", toks[name],
                                    data={"reblogs": "1"})
        assert status == 200 and rel["following"] and rel["showing_reblogs"]
    # Following again changes the options only.
    status, rel, _ = await call(a, "POST", f"/api/v1/accounts/{alice}/follow", toks["u1"],
                                data={"reblogs": "true"})
    assert rel["following"] and rel["showing_reblogs"] and rel["notifying"]
    status, doc, _ = await call(a, "POST", f"/api/v1/accounts/{alice}/follow", toks["alice"])
    assert status == 404  # oneself

    ids = {n: await account_id(a, n) for n in ("u1", "u2", "u3")}
    status, rels, _ = await call(
        a, "GET", "/api/v1/accounts/relationships", toks["alice"],
        params=[("id[]", ids["u1"]), ("id[]", ids["u3"]), ("id[]", "424242"), ("id[]", alice)])
    assert status == 200 and [r["id"] for r in rels] == [ids["u1"], ids["u3"], alice]
    expected = {"following", "showing_reblogs", "notifying", "followed_by", "blocking",
                "blocked_by", "muting", "muting_notifications", "requested", "requested_by",
                "domain_blocking", "endorsed", "note", "languages", "id"}
    assert set(rels[0]) == expected
    assert rels[0]["followed_by"] is True and rels[0]["following"] is False
    status, _, _ = await call(a, "GET", "/api/v1/accounts/relationships",
                              await token(a, "u1", "read:accounts"), params={"id[]": alice})
    assert status == 403

    # Followers, newest follow first, two by two with Link headers; following.
    status, page, hdr = await call(a, "GET", f"/api/v1/accounts/{alice}/followers",
                                   params={"limit": "2"})
    assert status == 200 and [x["username"] for x in page] == ["u3", "u2"]
    status, page, hdr = await call(a, "GET", link(hdr, "next") or "")
    assert [x["username"] for x in page] == ["u1"]
    status, page, _ = await call(a, "GET", link(hdr, "next") or "")
    assert page == []
    status, page, _ = await call(a, "GET", f"/api/v1/accounts/{ids['u2']}/following")
    assert [x["username"] for x in page] == ["alice"]

    status, rel, _ = await call(a, "POST", f"/api/v1/accounts/{alice}/unfollow", toks["u2"])
    assert status == 200 and rel["following"] is False
    status, rel, _ = await call(a, "POST", f"/api/v1/accounts/{alice}/unfollow", toks["u2"])
    assert status == 200 and rel["following"] is False  # idempotent, as Mastodon
    status, page, _ = await call(a, "GET", f"/api/v1/accounts/{alice}/followers")
    assert [x["username"] for x in page] == ["u3", "u1"]

    # Familiar followers: those u1 follows among alice's followers.
    for name in ("u3", "u2"):
        await call(a, "POST", f"/api/v1/accounts/{ids[name]}/follow", toks["u1"])
    status, fam, _ = await call(a, "GET", "/api/v1/accounts/familiar_followers", toks["u1"],
                                params=[("id[]", alice), ("id[]", ids["u3"])])
    assert status == 200 and [f["id"] for f in fam] == [alice, ids["u3"]]
    assert [x["username"] for x in fam[0]["accounts"]] == ["u3"] and fam[1]["accounts"] == []
    status, tags, _ = await call(a, "GET", f"/api/v1/accounts/{alice}/featured_tags")
    assert status == 200 and tags == []
    status, _, _ = await call(a, "GET", "/api/v1/accounts/987654/featured_tags")
    assert status == 404


async def test_private_coop_requests_and_hidden_members(instances: StartInstance) -> None:
    a = await instances("127.0.0.2", oauth_password_grant="1")
    for name in ("alice", "u1", "u2", "u3"):
        await a.create_user(name)
    await a.create_coop("secret", "alice", private=True)
    await a.create_coop("ouvert", "alice", openness="moderated")
    toks = {n: await token(a, n) for n in ("alice", "u1", "u2", "u3")}
    secret, ouvert = await account_id(a, "secret"), await account_id(a, "ouvert")
    u1, u2 = await account_id(a, "u1"), await account_id(a, "u2")

    for name in ("u1", "u2"):
        status, rel, _ = await call(a, "POST", f"/api/v1/accounts/{secret}/follow", toks[name])
        assert status == 200 and rel["requested"] is True and rel["following"] is False
    status, rel, _ = await call(a, "POST", f"/api/v1/accounts/{ouvert}/follow", toks["u1"])
    assert rel["requested"] is True

    # alice moderates both: u1 is listed once (for its oldest request), u2 too.
    status, reqs, hdr = await call(a, "GET", "/api/v1/follow_requests", toks["alice"])
    assert status == 200 and [r["username"] for r in reqs] == ["u2", "u1"]
    assert link(hdr, "next")
    status, reqs, _ = await call(a, "GET", "/api/v1/follow_requests", toks["u3"])
    assert status == 200 and reqs == []  # not a moderator
    status, _, _ = await call(a, "POST", f"/api/v1/follow_requests/{u1}/authorize", toks["u3"])
    assert status == 404

    # Authorize decides u1's oldest request (secret), then the next one (ouvert).
    status, rel, _ = await call(a, "POST", f"/api/v1/follow_requests/{u1}/authorize",
                                toks["alice"])
    assert status == 200 and rel["id"] == u1
    status, rels, _ = await call(a, "GET", "/api/v1/accounts/relationships", toks["u1"],
                                 params=[("id[]", secret), ("id[]", ouvert)])
    assert [(r["following"], r["requested"]) for r in rels] == [(True, False), (False, True)]
    status, rel, _ = await call(a, "POST", f"/api/v1/follow_requests/{u1}/reject",
                                toks["alice"])
    assert status == 200
    status, rel, _ = await call(a, "POST", f"/api/v1/follow_requests/{u2}/reject",
                                toks["alice"])
    assert status == 200
    status, rels, _ = await call(a, "GET", "/api/v1/accounts/relationships", toks["u1"],
                                 params=[("id[]", secret), ("id[]", ouvert)])
    assert [(r["following"], r["requested"]) for r in rels] == [(True, False), (False, False)]
    status, rel, _ = await call(a, "GET", "/api/v1/accounts/relationships", toks["u2"],
                                params={"id[]": secret})
    assert rel[0]["requested"] is False and rel[0]["following"] is False
    status, reqs, _ = await call(a, "GET", "/api/v1/follow_requests", toks["alice"])
    assert reqs == []
    status, _, _ = await call(a, "POST", f"/api/v1/follow_requests/{u2}/authorize",
                              toks["alice"])
    assert status == 404

    # The private cooperative's members: its members and moderators only.
    async def members(tok: str | None) -> list[str]:
        status, page, _ = await call(a, "GET", f"/api/v1/accounts/{secret}/followers", tok)
        assert status == 200
        return [x["username"] for x in page]

    assert await members(None) == [] and await members(toks["u2"]) == []
    assert await members(toks["u1"]) == ["u1"] and await members(toks["alice"]) == ["u1"]

    async def follows_of_u1(tok: str | None) -> list[str]:
        _, page, _ = await call(a, "GET", f"/api/v1/accounts/{u1}/following", tok)
        return [x["username"] for x in page]

    assert await follows_of_u1(toks["u1"]) == ["secret"]
    assert await follows_of_u1(toks["u2"]) == [] and await follows_of_u1(None) == []

    # Out of search listings but for its members; its exact address still finds it.
    async def search_names(tok: str | None, q: str = "secr") -> list[str]:
        _, doc, _ = await call(a, "GET", "/api/v2/search", tok,
                               params={"q": q, "type": "accounts"})
        return [x["username"] for x in doc["accounts"]]

    assert await search_names(toks["u2"]) == [] and await search_names(None) == []
    assert await search_names(toks["u1"]) == ["secret"]
    assert await search_names(toks["u2"], f"@secret@{a.domain}") == ["secret"]

    # Leaving a local cooperative through unfollow.
    status, rel, _ = await call(a, "POST", f"/api/v1/accounts/{secret}/unfollow", toks["u1"])
    assert status == 200 and rel["following"] is False
    assert await members(toks["alice"]) == []
