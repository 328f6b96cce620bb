"""Pure parts of the FAQ and documents: search folding, Markdown rendering, diffs, and the
Add/Remove router's reading of a remote group's collections."""

from __future__ import annotations

import subprocess
import sys

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


_ROUTING_PROBE = """
import importlib, json
for name in {order!r}:
    importlib.import_module(name)
from t3r1_fed.inbox import collections as c
from t3r1_fed.inbox.dispatch import TABLE
print(TABLE[("Add", "*")] is c.on_add and TABLE[("Remove", "*")] is c.on_remove)
print(json.dumps([f"{{a}}:{{n}}:{{fn.__module__}}" for (a, n), fn in c._HANDLERS.items()]))
"""


@pytest.mark.parametrize("reverse", [False, True])
def test_add_and_remove_routing_does_not_depend_on_feature_order(reverse: bool) -> None:
    # Add/Remove belong to the collection router alone; FAQ and moderation register by
    # collection name, so importing the feature modules in any order gives the same table.
    order = list(features.FEATURE_MODULES)[:: -1 if reverse else 1]
    out = subprocess.run([sys.executable, "-c", _ROUTING_PROBE.format(order=order)],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    owned, table = out.splitlines()
    assert owned == "True"
    routes = orjson.loads(table)
    assert "Add:faq:t3r1_fed.inbox.faq" in routes and "Remove:faq:t3r1_fed.inbox.faq" in routes
    for route in ("Add:featured", "Remove:featured", "Add:moderators", "Remove:moderators",
                  "Remove:group"):
        assert f"{route}:t3r1_fed.inbox.moderation" in routes, route
    assert TABLE[("Update", "OrderedCollection")].__name__ == "faq_reordered"


def test_collections_of_a_lemmy_community_names_its_moderators() -> None:
    # Lemmy publishes the moderators only as the Group's `attributedTo`: the router must
    # still route Add/Remove to that collection under the name `moderators`.
    uri = "https://lemmy.example/c/main"
    g = Actor(uri=uri, local=False, type="Group", username="main", domain="lemmy.example",
              inbox=f"{uri}/inbox", featured_url=f"{uri}/featured",
              raw=orjson.dumps({"id": uri, "type": "Group", "preferredUsername": "main",
                                "inbox": f"{uri}/inbox", "attributedTo": f"{uri}/moderators",
                                "featured": f"{uri}/featured"}).decode())
    found = collections_of(g)
    assert found["moderators"] == f"{uri}/moderators" == found["attributedTo"]
    elsewhere = Actor(uri=uri, local=False, type="Group", username="main",
                      domain="lemmy.example", inbox=f"{uri}/inbox",
                      raw=orjson.dumps({"id": uri, "type": "Group", "inbox": f"{uri}/inbox",
                                        "preferredUsername": "main",
                                        "attributedTo": "https://evil.example/mods"}).decode())
    assert "moderators" not in collections_of(elsewhere)  # not on the group's host
