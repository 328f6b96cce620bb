"""Pure parts of private cooperatives: NodeInfo reading, the form per software, the copy."""

from __future__ import annotations

from t3r1_fed.coops.private import copy_content, takes_announce
from t3r1_fed.db.models import Actor, Object
from t3r1_fed.federation.software import nodeinfo_href, origin_of, software_name

NI = "http://nodeinfo.diaspora.software/ns/schema/"


def test_nodeinfo_href_prefers_the_newest_2x_schema() -> None:
    index = {"links": [
        {"rel": NI + "2.0", "href": "https://m.example/nodeinfo/2.0"},
        {"rel": NI + "2.1", "href": "https://m.example/nodeinfo/2.1"},
        {"rel": NI + "1.0", "href": "https://m.example/nodeinfo/1.0"},
        {"rel": "https://www.w3.org/ns/activitystreams#Application", "href": "https://m.example/a"},
    ]}
    assert nodeinfo_href(index) == "https://m.example/nodeinfo/2.1"


def test_nodeinfo_href_refuses_junk() -> None:
    assert nodeinfo_href({}) is None
    assert nodeinfo_href({"links": "x"}) is None
    assert nodeinfo_href({"links": [{"rel": NI + "2.0", "href": "ftp://m.example/ni"}]}) is None
    assert nodeinfo_href({"links": [None, 3, {"rel": NI + "2.0"}]}) is None


def test_software_name() -> None:
    assert software_name({"software": {"name": " Mastodon "}}) == "mastodon"
    assert software_name({"software": {"name": "x" * 200}}) == "x" * 64
    assert software_name({"software": {"name": ""}}) is None
    assert software_name({"software": "lemmy"}) is None
    assert software_name({}) is None


def test_origin_of_keeps_scheme_and_port() -> None:
    assert origin_of("http://127.0.0.5:8080/inbox") == "http://127.0.0.5:8080"
    assert origin_of("https://m.example/users/a/inbox") == "https://m.example"


def test_form_per_software() -> None:
    for name in ("lemmy", "mbin", "friendica", "nodebb", "t3r1-fed", "piefed"):
        assert takes_announce(name)
    for name in ("mastodon", "gotosocial", "pleroma", "akkoma", "misskey", "unknown", None):
        assert not takes_announce(name)


def test_copy_content_names_and_links_the_author_escaped() -> None:
    author = Actor(uri="https://a.example/u/al", url='https://a.example/@al"><script>',
                   username="al<b>", domain="a.example")
    obj = Object(content="<p>Texte</p>", name="Titre & <i>sous-titre</i>")
    html = copy_content(author, obj)
    assert html.startswith(
        '<p>Par <a href="https://a.example/@al&quot;&gt;&lt;script&gt;">@al&lt;b&gt;@a.example'
        "</a> :</p>")
    assert "<p><strong>Titre &amp; &lt;i&gt;sous-titre&lt;/i&gt;</strong></p>" in html
    assert html.endswith("<p>Texte</p>")
