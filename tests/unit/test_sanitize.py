"""Remote HTML sanitising (INTEROP §4, §7.14) and the text/HTML conversions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bleach import html5lib_shim

from t3r1_fed.vocab import sanitize
from t3r1_fed.vocab.sanitize import (
    LINK_REL,
    MAX_NESTING,
    plain_text,
    sanitize_html,
    text_to_html,
)

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"

# --- XSS vectors: nothing executable may survive ---------------------------------------

XSS_VECTORS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href=" javascript:alert(1)">x</a>',
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">x</a>',
    '<a href="&#x6A;avascript&colon;alert(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<p style="background:url(javascript:alert(1))">x</p>',
    '<p onclick="alert(1)" onmouseover="alert(1)">x</p>',
    "<svg onload=alert(1)><script>alert(1)</script></svg>",
    "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<iframe src="javascript:alert(1)">alert(1)</iframe>',
    '<object data="javascript:alert(1)">alert(1)</object>',
    "<style>body{background:url(javascript:alert(1))}</style>",
    "<template><script>alert(1)</script></template>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "<b><i><u><script>alert(1)</script></u></i></b>",
    '<form action="javascript:alert(1)"><input type=submit></form>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<a href="https://ok.example" onclick="alert(1)" style="x">ok</a>',
    "<!--<script>alert(1)</script>-->",
]


@pytest.mark.parametrize("vector", XSS_VECTORS)
def test_xss_vectors_are_neutralised(vector: str) -> None:
    out = sanitize_html(vector).lower()
    for needle in ("<script", "<img", "<svg", "<iframe", "<object", "<style", "<form", "<meta"):
        assert needle not in out
    for needle in ("javascript:", "vbscript:", "data:", "onerror", "onload", "onclick", "style="):
        assert needle not in out
    assert "alert" not in out


def test_script_content_is_dropped_not_kept_as_text() -> None:
    assert sanitize_html("<p>a<script>alert(1)</script>b</p>") == "<p>ab</p>"
    assert sanitize_html("<style>p{color:red}</style>text") == "text"


def test_escaped_markup_stays_escaped() -> None:
    assert sanitize_html("a &amp; b &lt;script&gt;") == "a &amp; b &lt;script&gt;"
    assert sanitize_html("<p>1 < 2</p>") == "<p>1 &lt; 2</p>"


# --- what is kept ----------------------------------------------------------------------


def test_allowed_formatting_is_preserved() -> None:
    html = (
        "<p>a<br>b <em>e</em> <strong>s</strong> <b>b</b> <i>i</i> <u>u</u> <del>d</del></p>"
        "<pre><code>x = 1</code></pre><blockquote>q</blockquote>"
        "<ul><li>one</li></ul>"
    )
    assert sanitize_html(html) == html


def test_list_attributes_are_kept_when_valid() -> None:
    out = sanitize_html('<ol start="3" reversed><li value="7">a</li><li value="x">b</li></ol>')
    assert out == '<ol start="3" reversed=""><li value="7">a</li><li>b</li></ol>'


def test_mastodon_mention_markup_survives() -> None:
    html = (
        '<p><span class="h-card" translate="no"><a href="https://mamot.fr/@retiolus" '
        'class="u-url mention">@<span>retiolus</span></a></span> hi '
        '<a href="https://x.example/tags/a" class="mention hashtag" rel="tag">#<span>a</span></a> '
        '<a href="https://kde.org/donate/" target="_blank" rel="nofollow noopener noreferrer">'
        '<span class="invisible">https://</span><span class="ellipsis">kde.org/</span></a></p>'
    )
    out = sanitize_html(html)
    assert 'class="h-card" translate="no"' in out
    assert 'class="u-url mention"' in out
    assert 'class="mention hashtag"' in out
    assert '<span class="invisible">https://</span>' in out
    assert '<span class="ellipsis">' in out
    assert "target" not in out


def test_other_classes_are_dropped() -> None:
    out = sanitize_html('<span class="userinfo mention evil">a</span><span class="x">b</span>')
    assert out == '<span class="mention">a</span><span>b</span>'
    assert sanitize_html('<p class="mention">x</p>') == "<p>x</p>"  # classes on a/span only


def test_links_get_rel_and_lose_target() -> None:
    out = sanitize_html('<a href="https://a.example/" rel="me" target="_blank">a</a>')
    assert out == f'<a href="https://a.example/" rel="{LINK_REL}">a</a>'


@pytest.mark.parametrize(
    "href", ["https://a.example/", "http://a.example/", "mailto:a@b.example", "xmpp:a@b.example"]
)
def test_allowed_link_schemes(href: str) -> None:
    assert f'href="{href}"' in sanitize_html(f'<a href="{href}">x</a>')


@pytest.mark.parametrize("href", ["gemini://a.example/", "ftp://a.example/", "/relative", "#frag"])
def test_other_schemes_and_relative_links_are_unwrapped(href: str) -> None:
    assert sanitize_html(f'<a href="{href}">x</a>') == "x"


def test_matrix_scheme_is_allowed() -> None:
    assert 'href="matrix:u/alice:example.org"' in sanitize_html(
        '<a href="matrix:u/alice:example.org">m</a>'
    )


def test_headings_become_strong_paragraphs() -> None:
    assert sanitize_html("<h1>Title</h1><h3 id=x>Sub</h3>") == (
        "<p><strong>Title</strong></p><p><strong>Sub</strong></p>"
    )


def test_img_is_removed_and_unknown_tags_unwrapped() -> None:
    assert sanitize_html('<p>see <img src="https://a.example/i.png" alt="alt"> this</p>') == (
        "<p>see  this</p>"
    )
    assert sanitize_html("<div><section>text <sup>1</sup></section></div>").strip() == "text 1"


def test_empty_input() -> None:
    assert sanitize_html("") == ""


# --- pathological input ----------------------------------------------------------------


def test_deep_nesting_is_reduced_to_text() -> None:
    # html5lib is quadratic in nesting depth: 10 000 nested lists would take minutes.
    assert sanitize_html("<ul><li>" * 10_000 + "deep <script>alert(1)</script>") == "<p>deep</p>"
    assert sanitize_html("<b>" * 20_000 + "x &amp; y") == "<p>x &amp; y</p>"


def test_reasonable_nesting_is_kept() -> None:
    depth = MAX_NESTING - 1
    html = "<blockquote>" * depth + "q" + "</blockquote>" * depth
    assert sanitize_html(html) == html
    # Omitted end tags (p, li) and void elements do not count as nesting.
    many = "<ul>" + "<li><p>item<br>" * 500 + "</ul>"
    assert sanitize_html(many).count("<li>") == 500


def _html_strings(value: object) -> list[str]:
    """Every string containing markup in a JSON document."""
    if isinstance(value, str):
        return [value] if "<" in value else []
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [s for item in value for s in _html_strings(item)]
    return []


def _sample_html() -> list[str]:
    paths = sorted(SAMPLES.rglob("*.json")) if SAMPLES.is_dir() else []
    return [s for p in paths for s in _html_strings(json.loads(p.read_text("utf-8")))]


def test_misnested_markup_counts_as_nesting() -> None:
    # `</b>` does not close the `<ul>` opened inside it: html5lib keeps nesting lists.
    assert sanitize._too_deep("<b><ul></b>" * 60)
    assert not sanitize._too_deep("<b><i>x</i></b>" * 1000)


def test_real_html_is_not_reduced_to_text() -> None:
    for html in _sample_html():
        assert not sanitize._too_deep(html), html[:200]


def test_linear_walker_matches_html5lib(monkeypatch: pytest.MonkeyPatch) -> None:
    # sanitize.py swaps html5lib's etree walker for an O(1)-per-step copy; same tokens.
    corpus = [*XSS_VECTORS, "<p>" * 300 + "x", "<ul><li>a<li>b</ul><p>c<p>d", *_sample_html()]
    ours = [sanitize_html(t) for t in corpus]
    monkeypatch.setattr(sanitize._CLEANER, "walker", html5lib_shim.getTreeWalker("etree"))
    assert [sanitize_html(t) for t in corpus] == ours


# --- plain_text ------------------------------------------------------------------------


def test_plain_text_strips_tags_and_entities() -> None:
    html = "<p>Fish &amp; chips</p><p>2&nbsp;&lt;&nbsp;3<br>ok</p><script>alert(1)</script>"
    assert plain_text(html) == "Fish & chips 2 < 3 ok"


def test_plain_text_collapses_whitespace_and_limits() -> None:
    assert plain_text("  a \n\n b\t c  ") == "a b c"
    assert plain_text("<p>abcdefghij</p>", limit=5) == "abcd…"
    assert plain_text("<p>abc</p>", limit=5) == "abc"
    assert plain_text("abc", limit=0) == ""
    assert plain_text("") == ""


# --- text_to_html ----------------------------------------------------------------------


def test_text_to_html_escapes_and_makes_paragraphs() -> None:
    out = text_to_html("Hello <b>you</b> & co\nsecond line\n\n\nnew paragraph\r\n")
    assert out == (
        "<p>Hello &lt;b&gt;you&lt;/b&gt; &amp; co<br>second line</p><p>new paragraph</p>"
    )


def test_text_to_html_links_http_urls_only() -> None:
    out = text_to_html("see https://example.com/a?b=1&c=2 or example.org or javascript:alert(1)")
    assert (
        f'<a href="https://example.com/a?b=1&amp;c=2" rel="{LINK_REL}">'
        "https://example.com/a?b=1&amp;c=2</a>"
    ) in out
    assert "example.org</a>" not in out
    assert 'href="javascript' not in out


def test_text_to_html_output_is_stable_under_sanitising() -> None:
    out = text_to_html("a https://example.com/\n\nb")
    assert sanitize_html(out) == out


def test_text_to_html_empty() -> None:
    assert text_to_html("  \n ") == ""
