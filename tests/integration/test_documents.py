"""Collaborative Markdown documents across real instances.

A hosts the cooperative, bob on B is a member: saves make versions on A (with history,
diffs and optimistic concurrency), go out as `Update{Article}` announced by the group, and
B keeps the same version history. A remote document (from a peer) keeps versions on A
too, and an `Update` by someone other than its author changes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.follows import follow
from t3r1_fed.cli import main
from t3r1_fed.context import Context
from t3r1_fed.coops import documents as docs
from t3r1_fed.db.models import Actor, InboxItem, Object
from t3r1_fed.vocab.context import AS_PUBLIC
from tests.conftest import StartInstance
from tests.integration.test_federation import is_state
from tests.peer import CONTEXT, Peer
from tests.testrig import Instance, eventually

pytestmark = pytest.mark.federation

MD1 = "# Motion\n\nLe congrès demande :\n\n- des salaires\n"
MD2 = "# Motion\n\nLe congrès demande :\n\n- des salaires\n- les retraites\n"
MD3 = "# Motion\n\nLe congrès exige :\n\n- des salaires\n- les retraites\n"
MD4 = "# Motion\n\nLe congrès exige :\n\n- des salaires\n- les retraites\n- la **grève**\n"


async def actor(s: AsyncSession, uri: str) -> Actor:
    return (await s.execute(select(Actor).where(Actor.uri == uri))).scalar_one()


async def versions(inst: Instance, uri: str) -> list[tuple[int, str, str]]:
    """(version, author uri, markdown) of a document on `inst`, oldest first."""
    async with inst.session() as s:
        row = (await s.execute(select(Object).where(Object.uri == uri))).scalar()
        if row is None or row.kind != "document":
            return []
        return [(v.version, v.author, await docs.version_text(s, row, v.version))
                for v in await docs.history(s, row)]


def save(who: str, uri: str, md: str, base: int, **kw: Any) -> Any:
    async def go(ctx: Context, s: AsyncSession) -> int:
        return await docs.save_document(ctx, s, await actor(s, who), uri, md, base=base, **kw)

    return go


async def test_document_versions_diff_conflict_and_federation(instances: StartInstance) -> None:
    a = await instances("127.0.0.2")
    b = await instances("127.0.0.3")
    alice = await a.create_user("alice")
    carol = await a.create_user("carol")
    eve = await a.create_user("eve")  # not a member
    coop = await a.create_coop("syndicat", "alice")
    bob = await b.create_user("bob")
    await a.run(lambda ctx, s: follow(ctx, s, "carol", coop))
    await b.run(lambda ctx, s: follow(ctx, s, "bob", f"syndicat@{a.domain}"))
    await eventually(lambda: is_state(b, bob, coop, "accepted"), what="bob is a member")

    async def create(ctx: Context, s: AsyncSession) -> str:
        row = await docs.create_document(ctx, s, await actor(s, alice), await actor(s, coop),
                                         "Motion de congrès", MD1, "premier jet")
        return row.uri

    uri = await a.run(create)
    await eventually(lambda: versions(b, uri), what="the document on B")

    assert await a.run(save(carol, uri, MD2, 1, summary="ajout retraites")) == 2
    assert await a.run(save(alice, uri, MD3, 2)) == 3
    assert await a.run(save(carol, uri, MD4, 3, title="Motion finale")) == 4
    # A save from a stale base is refused: the UI must merge into version 4.
    with pytest.raises(docs.DocumentConflict) as conflict:
        await a.run(save(alice, uri, "autre chose", 2))
    assert conflict.value.latest == 4
    with pytest.raises(docs.DocumentError):
        await a.run(save(eve, uri, "intrus", 4))

    expected = [(1, alice, MD1), (2, carol, MD2), (3, alice, MD3), (4, carol, MD4)]
    assert await versions(a, uri) == expected
    async with a.session() as s:
        row = await docs.document(s, uri)
        assert [v.summary for v in await docs.history(s, row)][:2] == ["premier jet",
                                                                       "ajout retraites"]
        d = await docs.diff(s, row, 1, 3)
    assert "-Le congrès demande :" in d.unified and "+Le congrès exige :" in d.unified
    assert "+- les retraites" in d.unified and d.unified.startswith("--- version 1")
    assert ("-", "Le congrès demande :") in d.lines and ("+", "- les retraites") in d.lines
    assert (" ", "- des salaires") in d.lines

    # The document as served: rendered HTML, Markdown source, version, editor, updated.
    async with ClientSession() as http:
        async with http.get(uri, headers={"Accept": "application/activity+json"}) as r:
            served = await r.json(content_type=None)
    assert served["type"] == "Article" and served["name"] == "Motion finale"
    assert served["source"] == {"content": MD4, "mediaType": "text/markdown"}
    assert served["kind"] == "document" and served["version"] == 4
    assert served["editedBy"] == carol and served["updated"]
    assert "<strong>grève</strong>" in served["content"] and "#" not in served["content"]

    # B received every Update (announced by the group) and keeps the same history.
    await eventually(lambda: _eq(versions(b, uri), expected), what="B's version history")
    async with b.session() as s:
        copy = (await s.execute(select(Object).where(Object.uri == uri))).scalar_one()
        assert copy.name == "Motion finale" and "<strong>grève</strong>" in (copy.content or "")


async def test_remote_document_keeps_versions_and_ignores_non_author_update(
    instances: StartInstance,
) -> None:
    a = await instances("127.0.0.2")
    await a.create_user("alice")
    coop = await a.create_coop("syndicat", "alice")
    peer = await Peer("127.0.0.5").start()
    try:
        mona, mallory = peer.actor("mona"), peer.actor("mallory", key_index=1)
        uri = f"{peer.base}/objects/doc1"

        def article(md: str, version: int) -> dict[str, Any]:
            return {"id": uri, "type": "Article", "attributedTo": mona.id,
                    "name": "Cahier revendicatif", "content": f"<p>{md}</p>",
                    "source": {"content": md, "mediaType": "text/markdown"},
                    "kind": "document", "version": version, "editedBy": mona.id,
                    "to": [AS_PUBLIC], "cc": [coop], "audience": coop,
                    "published": "2026-11-28T12:00:00Z"}

        peer.objects[uri] = {"@context": CONTEXT, **article("v1", 1)}
        create = {"@context": CONTEXT, "id": f"{uri}/create", "type": "Create",
                  "actor": mona.id, "object": article("v1", 1), "to": [AS_PUBLIC], "cc": [coop]}
        assert (await mona.post(f"{a.base}/c/syndicat/inbox", create))[0] == 202
        await eventually(lambda: versions(a, uri), what="the remote document on A")

        # mallory, on the same server, rewrites mona's document: ignored (stored owner).
        forged = {"@context": CONTEXT, "id": f"{uri}/forged", "type": "Update",
                  "actor": mallory.id, "object": article("falsifié", 2), "to": [AS_PUBLIC]}
        assert (await mallory.post(f"{a.base}/inbox", forged))[0] == 202

        async def forged_result() -> str | None:
            async with a.session() as s:
                q = select(InboxItem).where(InboxItem.activity_uri == forged["id"])
                item = (await s.execute(q)).scalar()
                return f"{item.state}: {item.result}" if item and item.processed_at else None

        assert await eventually(forged_result) == (
            "ignored: update by someone other than the author")

        peer.objects[uri] = {"@context": CONTEXT, **article("v2", 2)}
        update = {"@context": CONTEXT, "id": f"{uri}/update2", "type": "Update",
                  "actor": mona.id, "object": article("v2", 2), "to": [AS_PUBLIC]}
        assert (await mona.post(f"{a.base}/inbox", update))[0] == 202
        want = [(1, mona.id, "v1"), (2, mona.id, "v2")]
        await eventually(lambda: _eq(versions(a, uri), want), what="version 2 on A")
        async with a.session() as s:
            row = (await s.execute(select(Object).where(Object.uri == uri))).scalar_one()
            assert row.content == "<p>v2</p>" and row.group_id is not None
    finally:
        await peer.stop()


async def _eq(value: Any, expected: Any) -> bool:
    return await value == expected


def test_cli_faq_add_and_doc_save(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`t3r1 admin faq-add` and `doc-save` (create, save from a base, stale base refused),
    run in-process (tests/integration/test_cli.py runs the real subprocess)."""
    monkeypatch.delenv("T3R1_DATABASE_URL", raising=False)
    data, md = tmp_path / "data", tmp_path / "motion.md"

    def t3r1(*args: str) -> tuple[int, str, str]:
        code = main(["--data-dir", str(data), *args])
        out = capsys.readouterr()
        return code, out.out, out.err

    assert t3r1("init", "--domain", "syndicat.example")[0] == 0
    assert t3r1("admin", "create-user", "alice", "--password", "secret-pass")[0] == 0
    assert t3r1("admin", "create-coop", "cgt", "--owner", "alice")[0] == 0
    code, out, err = t3r1("admin", "faq-add", "cgt", "alice", "Qu'est-ce qu'un préavis ?",
                          "Un délai.")
    assert code == 0 and "FAQ entry 1: https://syndicat.example/o/" in out, err
    md.write_text(MD1, encoding="utf-8")
    code, out, err = t3r1("admin", "doc-save", "cgt", "alice", "Motion", str(md))
    assert code == 0 and "version 1" in out, err
    uri = out.strip().rsplit(" ", 1)[-1]
    md.write_text(MD2, encoding="utf-8")
    save = ("admin", "doc-save", "cgt", "alice", "Motion", str(md), "--doc", uri)
    code, out, err = t3r1(*save, "--base", "1")
    assert code == 0 and "version 2" in out, err
    code, _, err = t3r1(*save, "--base", "1")
    assert code == 2 and "changed since version 1 (now version 2)" in err
    code, _, err = t3r1(*save)
    assert code == 2 and "--base" in err
