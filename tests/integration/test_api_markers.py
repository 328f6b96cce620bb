"""Reading positions (/api/v1/markers) against a real instance: form, JSON, Mastodon.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import StartInstance
from tests.integration.accounts_api_support import call
from tests.integration.small_api_support import quick_token


async def test_markers_versions_and_privacy(instances: StartInstance) -> None:
    inst = await instances("127.0.0.2")
    await inst.create_user("alice")
    await inst.create_user("bob")
    tok = await quick_token(inst, "alice", "read write")
    q = "/api/v1/markers?timeline[]=home&timeline[]=notifications"

    st, body, _ = await call(inst, "GET", q, tok)
    assert st == 200 and body == {}
    st, body, _ = await call(inst, "POST", "/api/v1/markers", tok,
                             data={"home[last_read_id]": "103206604258487607"})
    assert st == 200 and list(body) == ["home"]
    home = body["home"]
    assert home["last_read_id"] == "103206604258487607" and home["version"] == 1
    assert home["updated_at"].endswith("Z")

    st, body, _ = await call(inst, "POST", "/api/v1/markers", tok, json={
        "home": {"last_read_id": "103206604258487610"},
        "notifications": {"last_read_id": 35098814}})
    assert st == 200
    assert body["home"]["version"] == 2 and body["home"]["last_read_id"] == "103206604258487610"
    assert body["notifications"] == {**body["notifications"], "last_read_id": "35098814",
                                     "version": 1}
    # The same position again changes nothing.
    st, body, _ = await call(inst, "POST", "/api/v1/markers", tok,
                             data={"home[last_read_id]": "103206604258487610"})
    assert st == 200 and body["home"]["version"] == 2

    st, body, _ = await call(inst, "GET", q, tok)
    assert st == 200 and set(body) == {"home", "notifications"}
    assert body["home"]["version"] == 2 and body["notifications"]["last_read_id"] == "35098814"
    st, body, _ = await call(inst, "GET", "/api/v1/markers?timeline=home", tok)
    assert set(body) == {"home"}
    st, body, _ = await call(inst, "GET", "/api/v1/markers?timeline[]=public", tok)
    assert body == {}

    # Bad input: nothing saved.
    for bad in ({"home[last_read_id]": ""}, {"home[last_read_id]": "abc"}):
        st, body, _ = await call(inst, "POST", "/api/v1/markers", tok, data=bad)
        assert st == 422 and body["error"].startswith("Validation failed"), body
    st, body, _ = await call(inst, "POST", "/api/v1/markers", tok, data={"home": "5"})
    assert st == 400
    st, body, _ = await call(inst, "POST", "/api/v1/markers", tok, json={
        "notifications": {"last_read_id": "1"}, "home": {"last_read_id": ""}})
    assert st == 422
    st, body, _ = await call(inst, "GET", q, tok)
    assert body["notifications"]["last_read_id"] == "35098814"
    st, body, _ = await call(inst, "POST", "/api/v1/markers", tok,
                             data={"public[last_read_id]": "1"})
    assert st == 200 and body == {}  # other timelines are ignored, as Mastodon

    # Another user's markers are their own; scopes as Mastodon.
    bob = await quick_token(inst, "bob", "read:statuses")
    st, body, _ = await call(inst, "GET", q, bob)
    assert st == 200 and body == {}
    st, _, _ = await call(inst, "POST", "/api/v1/markers", bob, data={"home[last_read_id]": "1"})
    assert st == 403
    st, _, _ = await call(inst, "GET", q, await quick_token(inst, "alice", "write:statuses"))
    assert st == 403
    st, _, _ = await call(inst, "GET", q)
    assert st == 401

    # Two clients moving the same marker at once: each answer is a saved marker or a 409.
    async def move(n: int) -> tuple[int, Any]:
        st, body, _ = await call(inst, "POST", "/api/v1/markers", tok,
                                 data={"home[last_read_id]": str(200 + n)})
        return st, body
    answers = await asyncio.gather(*(move(n) for n in range(6)))
    assert all(st in (200, 409) for st, _ in answers), answers
    assert any(st == 200 for st, _ in answers)
    st, body, _ = await call(inst, "GET", q, tok)
    done = [b["home"] for s, b in answers if s == 200]
    assert body["home"]["version"] == 2 + len(done)
    assert body["home"]["last_read_id"] in {d["last_read_id"] for d in done}

    # The real Mastodon.py client (JSON bodies), as bob (whose token is read-only: a new one).
    mastodon = pytest.importorskip("mastodon")
    m = mastodon.Mastodon(access_token=await quick_token(inst, "bob", "read write"),
                          api_base_url=inst.base, version_check_mode="none")
    saved = await asyncio.to_thread(m.markers_set, ["home", "notifications"], ["42", "7"])
    assert saved["home"]["last_read_id"] == "42" and saved["notifications"]["version"] == 1
    got = await asyncio.to_thread(m.markers_get, ["home", "notifications"])
    assert got["home"]["last_read_id"] == "42" and got["notifications"]["last_read_id"] == "7"
