"""Pure parts of the FAQ and documents: search folding, Markdown rendering, diffs, and the
Add/Remove router's reading of a remote group's collections."""

from __future__ import annotations

import orjson
import pytest

from t3r1_fed import features
from t3r1_fed.coops.documents import diff_texts
from t3r1_fed.coops.faq import fold
from t3r1_fed.db.models import Actor
from t3r1_fed.inbox.collections import collections_of
from t3r1_fed.inbox.dispatch import TABLE
from t3r1_fed.vocab.markdown import render_markdown

features.load()


@pytest.mark.parametrize(("text", "folded"), [
    ("Grève", "greve"),
    ("GRÈVE générale", "greve generale"),
    ("Cœur de métier", "coeur de metier"),
    ("Straße", "strasse"),
    ("ÉLECTIONS PROFESSIONNELLES", "elections professionnelles"),
    ("ﬁche de paie", "fiche de paie"),  # compatibility ligature
])
def test_fold_ignores_case_and_accents(text: str, folded: str) -> None:
    assert fold(text) == folded


def test_markdown_is_rendered_and_sanitised() -> None:
    html = render_markdown(
        "# Titre\n\nLa **grève** et ~~rien~~.\n\n- un\n\n<script>alert(1)</script>\n\n"
        "[ok](https://example.org) [ko](javascript:alert(1)) ![img](https://x/y.png)"
    )
    assert "<p><strong>Titre</strong></p>" in html  # headings as Mastodon shows them
    assert "<strong>grève</strong>" in html and "<del>rien</del>" in html
    assert "<ul>" in html and "<li>un</li>" in html
    assert "<script" not in html and "&lt;script&gt;" in html  # raw HTML stays text
    assert 'href="https://example.org"' in html and "javascript:" not in html.split("ko")[0]
    assert 'href="javascript' not in html and "<img" not in html
    assert render_markdown("   \n") == ""


def test_diff_texts_unified_and_structured() -> None:
    d = diff_texts("a\nb\nc\n", "a\nB\nc\nd\n", 1, 3)
    assert d.unified.splitlines()[:2] == ["--- version 1", "+++ version 3"]
    assert "-b" in d.unified.splitlines() and "+B" in d.unified.splitlines()
    assert d.lines == [(" ", "a"), ("-", "b"), ("+", "B"), (" ", "c"), ("+", "d")]


def test_collections_of_a_remote_group_reads_top_level_and_endpoints() -> None:
    g = Actor(uri="https://x.example/c/s", local=False, type="Group", username="s",
              domain="x.example", inbox="https://x.example/c/s/inbox",
              featured_url="https://x.example/c/s/featured",
              raw=orjson.dumps({"id": "https://x.example/c/s", "faq": "https://x.example/faq1",
                                "endpoints": {"resources": {"id": "https://x.example/r"}},
                                "name": "not a url"}).decode())
    found = collections_of(g)
    assert found["faq"] == "https://x.example/faq1"
    assert found["resources"] == "https://x.example/r"
    assert found["featured"] == "https://x.example/c/s/featured"
    assert "name" not in found


def test_add_and_remove_reach_the_collection_router_through_moderation() -> None:
    # inbox/moderation.py takes Add/Remove and falls back to the router for other targets:
    # the router must have been registered first (features order).
    from t3r1_fed.inbox import collections, moderation

    assert TABLE[("Add", "*")] is moderation.on_add
    assert moderation._PREVIOUS["Add"] is collections.on_add
    assert moderation._PREVIOUS["Remove"] is collections.on_remove
    assert TABLE[("Update", "OrderedCollection")].__name__ == "faq_reordered"
