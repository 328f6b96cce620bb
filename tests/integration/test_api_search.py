"""Search and follow across two real instances with the real Mastodon.py client: a member
of one instance finds cooperatives of the other (`@name@host`, `name@host`, actor URL) with
`resolve=true`, follows an open one (following once the Accept arrives), asks to join a
moderated one whose moderator authorizes the request from the API, unfollows; statuses by
URL and hashtags; what is refused without a token."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.coops.membership import user_actor
from t3r1_fed.coops.news import publish_news
from tests.conftest import StartInstance
from tests.integration.accounts_api_support import OOB, call, token
from tests.interop._support import require
from tests.testrig import Instance, eventually

pytestmark = pytest.mark.federation

mastodon = require("mastodon", "Mastodon.py>=2")
SCOPES = ["read", "write", "follow"]


async def mastodon_py(inst: Instance, user: str) -> Any:
    cid, secret = await asyncio.to_thread(
        mastodon.Mastodon.create_app, "Appli syndicale", scopes=SCOPES, redirect_uris=OOB,
        api_base_url=inst.base)
    m = mastodon.Mastodon(client_id=cid, client_secret=secret, api_base_url=inst.base,
                          version_check_mode="none")
    await asyncio.to_thread(m.log_in, user, "password-" + user, scopes=SCOPES,
                            allow_http=True)
    return m


async def test_resolve_follow_and_authorize_across_instances(instances: StartInstance) -> None:
    a = await instances("127.0.0.2", oauth_password_grant="1")
    b = await instances("127.0.0.3", oauth_password_grant="1")
    await a.create_user("alice")
    await b.create_user("bob")
    await b.create_coop("metallos", "bob", title="Métallos")
    await b.create_coop("cheminots", "bob", openness="moderated")
    boulangers = await b.create_coop("boulangers", "bob")

    async def post(ctx: Context, s: AsyncSession) -> str:
        bob = await user_actor(s, "bob")
        return (await publish_news(ctx, s, bob, "metallos", "Assemblée #grève jeudi")).uri

    post_uri = await b.run(post)
    m = await mastodon_py(a, "alice")
    bob_tok = await token(b, "bob")

    # Unknown here until resolved; resolving needs a user token.
    found = await asyncio.to_thread(m.search_v2, "metallos", resolve=False)
    assert found["accounts"] == []
    status, doc, _ = await call(a, "GET", "/api/v2/search",
                                params={"q": f"@metallos@{b.domain}", "resolve": "true"})
    assert status == 401 and "error" in doc
    status, doc, _ = await call(a, "GET", "/api/v2/search")
    assert status == 400

    found = await asyncio.to_thread(m.search_v2, f"@metallos@{b.domain}", resolve=True)
    [coop] = found["accounts"]
    assert coop["acct"] == f"metallos@{b.domain}" and coop["group"] is True
    assert coop["display_name"] == "Métallos"
    # Known now: found by name and by lookup without the network.
    names = await asyncio.to_thread(m.account_search, "métal")
    assert [x["acct"] for x in names] == [f"metallos@{b.domain}"]
    looked = await asyncio.to_thread(m.account_lookup, f"metallos@{b.domain}")
    assert looked["id"] == coop["id"]

    rel = await asyncio.to_thread(m.account_follow, coop["id"])
    assert rel["requested"] or rel["following"]

    async def following(account: Any) -> bool:
        rels = await asyncio.to_thread(m.account_relationships, account["id"])
        return bool(rels[0]["following"])

    await eventually(lambda: following(coop), what="the Accept of metallos")
    b_coop = (await call(b, "GET", "/api/v1/accounts/lookup", params={"acct": "metallos"}))[1]

    async def members_on_b(coop_id: str) -> list[str]:
        _, page, _ = await call(b, "GET", f"/api/v1/accounts/{coop_id}/followers", bob_tok)
        return [x["acct"] for x in page]

    assert await members_on_b(b_coop["id"]) == [f"alice@{a.domain}"]
    rel = await asyncio.to_thread(m.account_unfollow, coop["id"])
    assert rel["following"] is False and rel["requested"] is False

    async def left() -> bool:
        return await members_on_b(b_coop["id"]) == []

    await eventually(left, what="the Undo{Follow} on the other instance")

    # A moderated cooperative: the request waits for its moderator, who decides it from
    # the API of the other instance.
    found = await asyncio.to_thread(m.search_v2, f"cheminots@{b.domain}", resolve=True)
    [chem] = found["accounts"]
    rel = await asyncio.to_thread(m.account_follow, chem["id"])
    assert rel["requested"] is True and rel["following"] is False

    async def requests_on_b() -> list[Any]:
        _, page, _ = await call(b, "GET", "/api/v1/follow_requests", bob_tok)
        return list(page)

    [req] = await eventually(requests_on_b, what="the request on the other instance")
    assert req["acct"] == f"alice@{a.domain}"
    status, rel, _ = await call(b, "POST", f"/api/v1/follow_requests/{req['id']}/authorize",
                                bob_tok)
    assert status == 200
    await eventually(lambda: following(chem), what="the Accept of cheminots")
    b_chem = (await call(b, "GET", "/api/v1/accounts/lookup", params={"acct": "cheminots"}))[1]
    assert await members_on_b(b_chem["id"]) == [f"alice@{a.domain}"]

    # An actor URL resolves too; a status URL is fetched; hashtags come from known posts.
    found = await asyncio.to_thread(m.search_v2, boulangers, resolve=True)
    assert [x["acct"] for x in found["accounts"]] == [f"boulangers@{b.domain}"]
    found = await asyncio.to_thread(m.search_v2, post_uri, resolve=True)
    assert [s["uri"] for s in found["statuses"]] == [post_uri]
    assert found["statuses"][0]["account"]["acct"] == f"bob@{b.domain}"
    found = await asyncio.to_thread(m.search_v2, "#grè", result_type="hashtags")
    assert [t["name"] for t in found["hashtags"]] == ["grève"]
    assert found["accounts"] == [] and found["statuses"] == []
    found = await asyncio.to_thread(m.search_v2, "assemblée", result_type="statuses")
    assert [s["uri"] for s in found["statuses"]] == [post_uri]
    bob_here = found["statuses"][0]["account"]["id"]
    for author, expected in ((bob_here, [post_uri]), (coop["id"], [])):
        status, doc, _ = await call(a, "GET", "/api/v2/search", m.access_token, params={
            "q": "assemblée", "type": "statuses", "account_id": author})
        assert status == 200 and [s["uri"] for s in doc["statuses"]] == expected

    # Without a token: local search works, offset and resolve do not.
    status, doc, _ = await call(a, "GET", "/api/v2/search", params={"q": "boul"})
    assert status == 200 and [x["username"] for x in doc["accounts"]] == ["boulangers"]
    assert doc["statuses"] == []
    status, _, _ = await call(a, "GET", "/api/v2/search", params={"q": "boul", "offset": "1"})
    assert status == 401
    status, _, _ = await call(a, "GET", "/api/v1/accounts/search", params={"q": "boul"})
    assert status == 401
    writer = await token(a, "alice", "write")
    status, _, _ = await call(a, "GET", "/api/v2/search", writer, params={"q": "boul"})
    assert status == 403
