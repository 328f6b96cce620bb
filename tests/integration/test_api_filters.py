"""Filters v2 and v1 (/api/v2/filters, /api/v1/filters) against a real instance: form bodies
with Rails nested keys, JSON bodies, Mastodon.py, and the matching used by the renderer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.api.filters import active_filters, filter_results
from t3r1_fed.context import Context
from t3r1_fed.db.models import User
from t3r1_fed.db.models_api import Filter, FilterKeyword
from tests.conftest import StartInstance
from tests.integration.accounts_api_support import call
from tests.integration.small_api_support import quick_token
from tests.testrig import Instance


async def counts(inst: Instance) -> tuple[int, int]:
    async def go(ctx: Context, s: AsyncSession) -> tuple[int, int]:
        f = (await s.execute(select(func.count()).select_from(Filter))).scalar_one()
        k = (await s.execute(select(func.count()).select_from(FilterKeyword))).scalar_one()
        return f, k
    return await inst.run(go)


async def matches(inst: Instance, user: str, context: str, text: str) -> list[dict[str, Any]]:
    async def go(ctx: Context, s: AsyncSession) -> list[dict[str, Any]]:
        uid = (await s.execute(select(User.id).where(User.username == user))).scalar_one()
        return filter_results(await active_filters(s, uid, context), text)
    return await inst.run(go)


async def test_filters_v2_keywords_and_v1_views(instances: StartInstance) -> None:
    inst = await instances("127.0.0.2")
    await inst.create_user("alice")
    await inst.create_user("bob")
    tok = await quick_token(inst, "alice", "read write")
    bob = await quick_token(inst, "bob", "read write")

    # Create with a form and Rails nested keys.
    st, flt, _ = await call(inst, "POST", "/api/v2/filters", tok, data=[
        ("title", "Grève"), ("context[]", "home"), ("context[]", "public"),
        ("filter_action", "hide"), ("expires_in", "3600"),
        ("keywords_attributes[][keyword]", "grève"),
        ("keywords_attributes[][keyword]", "#piquet"),
        ("keywords_attributes[][whole_word]", "false"),
        ("keywords_attributes[][keyword]", ""),  # all blank: ignored
    ])
    assert st == 200, flt
    assert flt["title"] == "Grève" and flt["context"] == ["home", "public"]
    assert flt["filter_action"] == "hide" and flt["expires_at"].endswith("Z")
    assert [(k["keyword"], k["whole_word"]) for k in flt["keywords"]] == [
        ("grève", True), ("#piquet", False)]
    assert flt["statuses"] == []
    fid = flt["id"]
    kw_greve, kw_piquet = (k["id"] for k in flt["keywords"])

    # JSON body; indexed form keys; blur (Mastodon 4.4).
    st, other, _ = await call(inst, "POST", "/api/v2/filters", tok, json={
        "title": "Bruit", "context": ["notifications"], "filter_action": "blur",
        "keywords_attributes": [{"keyword": "spam", "whole_word": False}]})
    assert st == 200 and other["filter_action"] == "blur" and other["expires_at"] is None
    st, third, _ = await call(inst, "POST", "/api/v2/filters", tok, data={
        "title": "Tiers", "context[]": "thread",
        "keywords_attributes[0][keyword]": "a", "keywords_attributes[1][keyword]": "b"})
    assert st == 200 and [k["keyword"] for k in third["keywords"]] == ["a", "b"]
    assert third["filter_action"] == "warn"

    # Bad input → 422/400 and nothing stored.
    before = await counts(inst)
    for bad, msg in (
        ({"context[]": "home"}, "Title can't be blank"),
        ({"title": "x"}, "Context can't be blank"),
        ({"title": "x", "context[]": "everywhere"}, "invalid context"),
        ({"title": "x", "context[]": "home", "filter_action": "delete"}, "Filter action"),
        ({"title": "x", "context[]": "home", "expires_in": "bientôt"}, "Expires in"),
        ({"title": "x", "context[]": "home", "keywords_attributes[][whole_word]": "1",
          "keywords_attributes[][keyword]": " "}, "Keyword can't be blank"),
        ({"title": "x" * 256, "context[]": "home"}, "too long"),
    ):
        st, body, _ = await call(inst, "POST", "/api/v2/filters", tok, data=bad)
        assert st == 422 and msg in body["error"], (bad, body)
    st, body, _ = await call(inst, "POST", "/api/v2/filters", tok, data=[
        ("title", "x"), ("context", "home"), ("context[]", "home")])
    assert st == 400 and "Invalid parameters" in body["error"]
    assert await counts(inst) == before

    # Update: title, nested keyword update / destroy / add, in one request (indexed form
    # keys: with `[]` Rack would merge the new keyword into the previous hash).
    st, upd, _ = await call(inst, "PUT", f"/api/v2/filters/{fid}", tok, data=[
        ("title", "Grève générale"), ("filter_action", "warn"), ("expires_in", ""),
        ("keywords_attributes[0][id]", kw_greve), ("keywords_attributes[0][whole_word]", "0"),
        ("keywords_attributes[1][id]", kw_piquet), ("keywords_attributes[1][_destroy]", "1"),
        ("keywords_attributes[2][keyword]", "manif"),
    ])
    assert st == 200, upd
    assert upd["title"] == "Grève générale" and upd["expires_at"] is None
    assert upd["filter_action"] == "warn" and upd["context"] == ["home", "public"]
    assert [(k["keyword"], k["whole_word"]) for k in upd["keywords"]] == [
        ("grève", False), ("manif", True)]
    # A keyword of another filter cannot be touched through this one; all or nothing.
    st, _, _ = await call(inst, "PUT", f"/api/v2/filters/{fid}", tok, json={
        "title": "changé", "keywords_attributes": [{"id": other["keywords"][0]["id"],
                                                   "_destroy": True}]})
    assert st == 404
    st, body, _ = await call(inst, "GET", f"/api/v2/filters/{fid}", tok)
    assert st == 200 and body == upd

    # Keywords endpoints (Mastodon's path and the alias).
    st, kws, _ = await call(inst, "GET", f"/api/v2/filters/{fid}/keywords", tok)
    assert st == 200 and kws == upd["keywords"]
    st, kw, _ = await call(inst, "POST", f"/api/v2/filters/{fid}/keywords", tok,
                           data={"keyword": "Piquet", "whole_word": "False"})
    assert st == 200 and kw["keyword"] == "Piquet" and kw["whole_word"] is False
    st, body, _ = await call(inst, "GET", f"/api/v2/filters/keywords/{kw['id']}", tok)
    assert st == 200 and body == kw
    st, body, _ = await call(inst, "PUT", f"/api/v2/filter_keywords/{kw['id']}", tok,
                             json={"keyword": "piquet de grève", "whole_word": True})
    assert st == 200 and body == {"id": kw["id"], "keyword": "piquet de grève",
                                  "whole_word": True}
    st, body, _ = await call(inst, "PUT", f"/api/v2/filters/keywords/{kw['id']}", tok,
                             data={"keyword": ""})
    assert st == 422

    # Another user sees and changes none of it.
    for method, path in (("GET", f"/api/v2/filters/{fid}"), ("PUT", f"/api/v2/filters/{fid}"),
                         ("DELETE", f"/api/v2/filters/{fid}"),
                         ("GET", f"/api/v2/filters/{fid}/keywords"),
                         ("POST", f"/api/v2/filters/{fid}/keywords"),
                         ("GET", f"/api/v2/filters/keywords/{kw['id']}"),
                         ("DELETE", f"/api/v2/filter_keywords/{kw['id']}"),
                         ("GET", f"/api/v1/filters/{kw['id']}"),
                         ("DELETE", f"/api/v1/filters/{kw['id']}"),
                         ("GET", "/api/v2/filters/nope")):
        st, body, _ = await call(inst, method, path, bob, data={"keyword": "x", "title": "x"})
        assert st == 404 and body == {"error": "Record not found"}, (method, path)
    st, body, _ = await call(inst, "GET", "/api/v2/filters", bob)
    assert st == 200 and body == []
    st, body, _ = await call(inst, "GET", "/api/v1/filters", bob)
    assert st == 200 and body == []

    # What the status renderer gets.
    got = await matches(inst, "alice", "home", "Appel à la GRÈVE ; piquet de grève demain")
    assert [(r["filter"]["id"], r["keyword_matches"]) for r in got] == [(fid, ["GRÈVE"])]
    assert await matches(inst, "alice", "home", "les grévistes") == []
    assert await matches(inst, "alice", "thread", "GRÈVE") == []  # not in that context
    got = await matches(inst, "alice", "notifications", "du SPAMMEUR")
    assert got[0]["filter"]["filter_action"] == "blur" and got[0]["keyword_matches"] == ["SPAM"]
    assert await matches(inst, "bob", "home", "grève") == []

    # V1: views of keywords.
    st, v1, _ = await call(inst, "GET", "/api/v1/filters", tok)
    assert st == 200 and len(v1) == 6
    one = next(f for f in v1 if f["id"] == kw["id"])
    assert one == {"id": kw["id"], "phrase": "piquet de grève", "context": ["home", "public"],
                   "whole_word": True, "expires_at": None, "irreversible": False}
    st, created, _ = await call(inst, "POST", "/api/v1/filters", tok, data=[
        ("phrase", "patronat"), ("context[]", "home"), ("context[]", "thread"),
        ("irreversible", "true"), ("whole_word", "0"), ("expires_in", "86400")])
    assert st == 200, created
    assert created["phrase"] == "patronat" and created["irreversible"] is True
    assert created["whole_word"] is False and created["context"] == ["home", "thread"]
    assert created["expires_at"] is not None
    st, v2, _ = await call(inst, "GET", "/api/v2/filters", tok)
    made = next(f for f in v2 if f["keywords"] and f["keywords"][0]["id"] == created["id"])
    assert made["title"] == "patronat" and made["filter_action"] == "hide"
    st, body, _ = await call(inst, "PUT", f"/api/v1/filters/{created['id']}", tok, json={
        "phrase": "le patronat", "context": ["home"], "irreversible": False})
    assert st == 200 and body["phrase"] == "le patronat" and body["context"] == ["home"]
    assert body["irreversible"] is False
    # The filter of "grève" has several keywords: its context cannot change through v1 …
    st, body, _ = await call(inst, "PUT", f"/api/v1/filters/{kw['id']}", tok,
                             data={"context[]": "thread"})
    assert st == 422 and "more than one filter keyword" in body["error"]
    # … but the keyword alone can.
    st, body, _ = await call(inst, "PUT", f"/api/v1/filters/{kw['id']}", tok,
                             data={"whole_word": "false"})
    assert st == 200 and body["whole_word"] is False
    st, body, _ = await call(inst, "POST", "/api/v1/filters", tok, data={"phrase": "x"})
    assert st == 422 and "Context" in body["error"]
    st, body, _ = await call(inst, "DELETE", f"/api/v1/filters/{kw['id']}", tok)
    assert st == 200 and body == {}
    st, _, _ = await call(inst, "GET", f"/api/v2/filters/keywords/{kw['id']}", tok)
    assert st == 404

    # Scopes.
    st, _, _ = await call(inst, "GET", "/api/v2/filters", await quick_token(inst, "alice", "write"))
    assert st == 403
    ro = await quick_token(inst, "alice", "read:filters")
    st, _, _ = await call(inst, "GET", "/api/v1/filters", ro)
    assert st == 200
    for method, path in (("POST", "/api/v2/filters"), ("DELETE", f"/api/v2/filters/{fid}"),
                         ("POST", "/api/v1/filters"), ("PUT", "/api/v2/filter_keywords/1")):
        st, _, _ = await call(inst, method, path, ro, data={"title": "x"})
        assert st == 403, (method, path)
    st, _, _ = await call(inst, "GET", "/api/v2/filters")
    assert st == 401

    # Deleting a filter deletes its keywords.
    st, body, _ = await call(inst, "DELETE", f"/api/v2/filters/{fid}", tok)
    assert st == 200 and body == {}
    st, _, _ = await call(inst, "GET", f"/api/v2/filters/{fid}", tok)
    assert st == 404
    assert await matches(inst, "alice", "home", "grève") == []

    # The real Mastodon.py client (JSON bodies for v2, forms with `context[]` for v1), as bob.
    mastodon = pytest.importorskip("mastodon")
    m = mastodon.Mastodon(access_token=bob, api_base_url=inst.base, version_check_mode="none")
    flt = await asyncio.to_thread(
        m.create_filter_v2, "Grève", ["home", "thread"], "warn", expires_in=600,
        keywords_attributes=[{"keyword": "grève", "whole_word": True}])
    assert flt["title"] == "Grève" and flt["keywords"][0]["keyword"] == "grève"
    kw = await asyncio.to_thread(m.add_filter_keyword_v2, flt["id"], "piquet", whole_word=False)
    assert kw["whole_word"] is False
    upd = await asyncio.to_thread(m.update_filter_v2, flt["id"], title="Grève !")
    assert upd["title"] == "Grève !" and len(upd["keywords"]) == 2
    await asyncio.to_thread(m.delete_filter_keyword_v2, kw["id"])
    assert len((await asyncio.to_thread(m.filters_v2))[0]["keywords"]) == 1
    v1 = await asyncio.to_thread(m.filter_create, "patron", ["home", "public"],
                                 irreversible=True)
    assert v1["phrase"] == "patron" and v1["irreversible"] is True
    assert [f["phrase"] for f in await asyncio.to_thread(m.filters)] == ["grève", "patron"]
    await asyncio.to_thread(m.filter_delete, v1["id"])
    await asyncio.to_thread(m.delete_filter_v2, flt["id"])
    # Deleting a v1 filter deletes its keyword; the v2 filter stays, empty (as Mastodon).
    left = await asyncio.to_thread(m.filters_v2)
    assert [(f["title"], f["keywords"]) for f in left] == [("patron", [])]
