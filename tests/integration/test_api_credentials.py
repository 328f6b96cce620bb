"""`PATCH /api/v1/accounts/update_credentials` on real instances: the profile changes, a
follower on another instance sees it through the `Update{Person}`, locking makes follows
wait for the follow_requests API and unlocking accepts them; what cannot be stored is
refused, never dropped."""

from __future__ import annotations

import pytest
from aiohttp import FormData

from tests.conftest import StartInstance
from tests.integration.accounts_api_support import call, token
from tests.testrig import eventually

pytestmark = pytest.mark.federation


async def test_update_credentials_federates_and_locks(instances: StartInstance) -> None:
    a = await instances("127.0.0.2", oauth_password_grant="1")
    b = await instances("127.0.0.3", oauth_password_grant="1")
    await a.create_user("alice")
    await a.create_user("carl")
    await b.create_user("bob")
    alice_tok, carl_tok, bob_tok = (await token(a, "alice"), await token(a, "carl"),
                                    await token(b, "bob"))

    # bob (on b) follows alice (on a): unlocked, accepted at once.
    st, found, _ = await call(b, "GET", "/api/v2/search", bob_tok,
                              params={"q": f"alice@{a.domain}", "resolve": "true"})
    [remote_alice] = found["accounts"]
    st, rel, _ = await call(b, "POST", f"/api/v1/accounts/{remote_alice['id']}/follow", bob_tok)
    assert st == 200

    async def bob_follows() -> bool:
        _, rels, _ = await call(b, "GET", "/api/v1/accounts/relationships", bob_tok,
                                params={"id[]": remote_alice["id"]})
        return bool(rels[0]["following"])

    await eventually(bob_follows, what="alice's Accept")

    st, me, _ = await call(a, "PATCH", "/api/v1/accounts/update_credentials", alice_tok,
                           data={"display_name": "Alice Martin",
                                 "note": "Déléguée <CGT>\n\nhttps://example.org"})
    assert st == 200, me
    assert me["display_name"] == "Alice Martin"
    assert me["note"].startswith("<p>Déléguée &lt;CGT&gt;</p>") and "<script" not in me["note"]
    assert 'href="https://example.org"' in me["note"]
    assert me["source"]["note"].startswith("Déléguée <CGT>")

    async def seen_on_b() -> bool:
        _, doc, _ = await call(b, "GET", f"/api/v1/accounts/{remote_alice['id']}")
        return bool(doc["display_name"] == "Alice Martin")

    await eventually(seen_on_b, what="the Update{Person} on the other instance")

    # Locked: carl's follow waits; alice authorizes it from the API. Unlocking accepts
    # the requests still waiting (here: none left, then a new one).
    st, me, _ = await call(a, "PATCH", "/api/v1/accounts/update_credentials", alice_tok,
                           json={"locked": True})
    assert st == 200 and me["locked"] is True
    alice_id = me["id"]
    st, rel, _ = await call(a, "POST", f"/api/v1/accounts/{alice_id}/follow", carl_tok)
    assert rel["requested"] is True and rel["following"] is False
    st, reqs, _ = await call(a, "GET", "/api/v1/follow_requests", alice_tok)
    assert [r["username"] for r in reqs] == ["carl"]
    st, me, _ = await call(a, "GET", "/api/v1/accounts/verify_credentials", alice_tok)
    assert me["source"]["follow_requests_count"] == 1
    st, rel, _ = await call(a, "POST", f"/api/v1/follow_requests/{reqs[0]['id']}/authorize",
                            alice_tok)
    assert st == 200 and rel["followed_by"] is True and rel["requested_by"] is False
    st, rel, _ = await call(a, "POST", f"/api/v1/accounts/{alice_id}/unfollow", carl_tok)
    st, rel, _ = await call(a, "POST", f"/api/v1/accounts/{alice_id}/follow", carl_tok)
    assert rel["requested"] is True
    st, me, _ = await call(a, "PATCH", "/api/v1/accounts/update_credentials", alice_tok,
                           data={"locked": "false"})
    assert me["locked"] is False
    st, rels, _ = await call(a, "GET", "/api/v1/accounts/relationships", carl_tok,
                             params={"id[]": alice_id})
    assert rels[0]["following"] is True

    # Refused: too long, uploads, free fields, another default privacy; nothing changed.
    for data in ({"display_name": "x" * 31}, {"fields_attributes[0][name]": "Site",
                                              "fields_attributes[0][value]": "x"},
                 {"source[privacy]": "private"}):
        st, doc, _ = await call(a, "PATCH", "/api/v1/accounts/update_credentials",
                                alice_tok, data=data)
        assert st == 422 and "error" in doc, data
    upload = FormData()
    upload.add_field("avatar", b"\x89PNG...", filename="a.png", content_type="image/png")
    upload.add_field("display_name", "Autre")
    st, doc, _ = await call(a, "PATCH", "/api/v1/accounts/update_credentials", alice_tok,
                            data=upload)
    assert st == 422
    st, me, _ = await call(a, "GET", "/api/v1/accounts/verify_credentials", alice_tok)
    assert me["display_name"] == "Alice Martin"
    st, doc, _ = await call(a, "PATCH", "/api/v1/accounts/update_credentials",
                            await token(a, "alice", "read write:statuses"),
                            data={"display_name": "Non"})
    assert st == 403
