"""Hashtag and mention extraction, rendering of members' text, remote hashtags."""

from __future__ import annotations

import pytest

from t3r1_fed.vocab.markup import (
    MAX_MENTIONS,
    extract_hashtags,
    extract_mentions,
    hashtags_of,
    normalize_tag,
    render,
    valid_language,
)


def href(tag: str) -> str:
    return f"https://t3r1.example/tags/{tag}"


@pytest.mark.parametrize(
    ("text", "tags"),
    [
        ("Grève #Transports et #transports", ["transports"]),
        ("#été #Été_2026 #NAO", ["été", "été_2026", "nao"]),
        ("#123 is a number, #a1 is a tag", ["a1"]),
        ("https://example.org/page#anchor and https://example.org/#frag", []),
        ("mot#collé and &#39; entity", []),
        ("(#paren) [#bracket]", ["paren", "bracket"]),
        ("# Heading is not a tag", []),
    ],
)
def test_extract_hashtags(text: str, tags: list[str]) -> None:
    assert extract_hashtags(text) == tags


@pytest.mark.parametrize(
    ("text", "mentions"),
    [
        ("Merci @mona@social.example !", [("mona", "social.example")]),
        ("@Bob@B.example:8443. et @alice", [("bob", "b.example:8443"), ("alice", None)]),
        ("mail me at someone@example.org", []),
        ("https://social.example/@mona is a profile URL", []),
        ("@mona@social.example @mona@social.example", [("mona", "social.example")]),
        ("@first.last@x.example, @under_score", [("first.last", "x.example"),
                                                 ("under_score", None)]),
    ],
)
def test_extract_mentions(text: str, mentions: list[tuple[str, str | None]]) -> None:
    assert extract_mentions(text) == mentions


def test_mentions_are_capped() -> None:
    text = " ".join(f"@u{i}@host.example" for i in range(MAX_MENTIONS + 5))
    assert len(extract_mentions(text)) == MAX_MENTIONS


def test_render_plain_text_links_tags_and_resolved_mentions_only() -> None:
    html = render(
        "Grève #Transports avec @mona@social.example et @ghost@nowhere.example <b>x</b>",
        tag_href=href,
        mentions={("mona", "social.example"): "https://social.example/@mona"},
    )
    assert (
        '<a href="https://t3r1.example/tags/transports" class="mention hashtag"' in html
    )
    assert "#<span>Transports</span></a>" in html
    assert (
        '<span class="h-card" translate="no"><a href="https://social.example/@mona" '
        'class="u-url mention"' in html
    )
    assert "@ghost@nowhere.example" in html  # unresolved: left as typed
    assert "<b>" not in html and "&lt;b&gt;" in html


def test_render_markdown_is_safe() -> None:
    html = render(
        "**gras** _it_ [ok](https://a.example/x) [bad](javascript:alert(1))\n\n"
        "<script>alert(1)</script> https://bare.example.org/y @my_name",
        markdown=True,
        tag_href=href,
        mentions={("my_name", None): "https://t3r1.example/u/my_name"},
    )
    assert "<strong>gras</strong>" in html and "<em>it</em>" in html
    assert '<a href="https://a.example/x" rel="nofollow noopener noreferrer">ok</a>' in html
    assert "javascript:" not in html.replace("[bad](javascript:alert(1))", "")
    assert 'href="javascript' not in html
    assert "<script>" not in html
    assert '<a href="https://bare.example.org/y" rel="nofollow noopener noreferrer">' in html
    assert "@<span>my_name</span>" in html  # the underscore survived Markdown


def test_markers_typed_by_the_user_are_ignored() -> None:
    html = render("a \ue0000\ue001 b #tag", tag_href=href)
    assert "\ue000" not in html and "#<span>tag</span>" in html


def test_remote_hashtags_from_tag_list() -> None:
    raw = {
        "tag": [
            {"type": "Hashtag", "name": "#Grève", "href": "https://x.example/tags/greve"},
            {"type": "Hashtag", "name": "grève"},
            {"type": "Mention", "name": "@a@x.example", "href": "https://x.example/a"},
            {"type": "Hashtag", "name": "#" + "x" * 300},
            {"type": "CommunityPostTag", "preferredUsername": "news"},
            "junk",
        ]
    }
    assert hashtags_of(raw) == ["grève"]
    assert hashtags_of({"tag": {"type": "Hashtag", "name": "#Solo"}}) == ["solo"]
    assert hashtags_of({}) == []


def test_normalize_tag_and_language() -> None:
    assert normalize_tag("#NAO") == "nao"
    assert normalize_tag("#12") is None and normalize_tag("a b") is None
    assert valid_language("fr") == "fr" and valid_language("pt-BR") == "pt-BR"
    assert valid_language("français") is None and valid_language("") is None
