"""Local posts typed by members → safe HTML, with hashtags and mentions (pure, no DB).

Two input formats: plain text (vocab/sanitize.text_to_html: paragraphs, line breaks,
links) and Markdown (vocab/markdown.py: CommonMark without raw HTML, reduced to what
Mastodon's allow-list shows; bare URLs linked here). `#tag` and `@user@host` become
Mastodon-shaped links: they are swapped for markers before formatting (so Markdown
never mangles `_` in names) and put back after. Whatever is produced goes through
sanitize_html at the end, so a bug here can never let unsafe HTML out.
"""

from __future__ import annotations

import html as html_lib
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final

from bleach.linkifier import Linker, build_url_re

from t3r1_fed.vocab.markdown import render_markdown
from t3r1_fed.vocab.sanitize import LINK_REL, sanitize_html, text_to_html
from t3r1_fed.vocab.shapes import as_list, type_list

MAX_HASHTAG_CHARS: Final = 100
MAX_MENTIONS: Final = 10
MAX_HASHTAGS: Final = 30

# `#tag`: not inside a word, a URL fragment (`/#x`), an entity (`&#1;`) or after `)`/`]`;
# at least one letter (`#1` is not a tag), like Mastodon's HASHTAG_RE.
HASHTAG_RE: Final = re.compile(r"(?<![\w/#&)\]])#(\w*[^\W\d_]\w*)")
# `@user` (local) or `@user@host[:port]`; not inside a word, an e-mail address or a URL.
MENTION_RE: Final = re.compile(
    r"(?<![\w/@.:])@(\w(?:[\w.-]*\w)?)(?:@([\w-]+(?:\.[\w-]+)*(?::\d{1,5})?))?"
)
TAG_NAME_RE: Final = re.compile(r"\w*[^\W\d_]\w*")
LANGUAGE_RE: Final = re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9]{2,8}){0,3}")

_PH_OPEN, _PH_CLOSE = "\ue000", "\ue001"
_PH_RE: Final = re.compile(f"{_PH_OPEN}(\\d+){_PH_CLOSE}")


def normalize_tag(name: str) -> str | None:
    """`#Grève` / `Grève` → `grève`; None when it is not a usable hashtag."""
    tag = name.strip().lstrip("#").strip().lower()
    if not tag or len(tag) > MAX_HASHTAG_CHARS or not TAG_NAME_RE.fullmatch(tag):
        return None
    return tag


def extract_hashtags(text: str) -> list[str]:
    """The hashtags of a text, normalised, in order, without duplicates."""
    found: dict[str, None] = {}
    for m in HASHTAG_RE.finditer(text):
        tag = normalize_tag(m.group(1))
        if tag is not None:
            found.setdefault(tag)
    return list(found)[:MAX_HASHTAGS]


def extract_mentions(text: str) -> list[tuple[str, str | None]]:
    """(username, host or None for a local name) of each `@mention`, without duplicates."""
    found: dict[tuple[str, str | None], None] = {}
    for m in MENTION_RE.finditer(text):
        host = m.group(2).lower() if m.group(2) else None
        found.setdefault((m.group(1).lower(), host))
    return list(found)[:MAX_MENTIONS]


def hashtags_of(raw: Mapping[str, Any]) -> list[str]:
    """Normalised hashtags of a remote object's `tag` list (Hashtag items)."""
    found: dict[str, None] = {}
    for item in as_list(raw.get("tag"))[:200]:
        if not isinstance(item, Mapping) or "Hashtag" not in type_list(item):
            continue
        name = item.get("name")
        tag = normalize_tag(name) if isinstance(name, str) else None
        if tag is not None:
            found.setdefault(tag)
    return list(found)[:MAX_HASHTAGS]


def valid_language(lang: str | None) -> str | None:
    """A BCP-47-looking language tag (`fr`, `pt-BR`), else None."""
    if lang is None:
        return None
    lang = lang.strip()
    return lang if LANGUAGE_RE.fullmatch(lang) else None


def hashtag_html(tag: str, href: str) -> str:
    return (
        f'<a href="{html_lib.escape(href)}" class="mention hashtag" rel="tag">'
        f"#<span>{html_lib.escape(tag)}</span></a>"
    )


def mention_html(username: str, href: str) -> str:
    return (
        f'<span class="h-card" translate="no"><a href="{html_lib.escape(href)}" '
        f'class="u-url mention">@<span>{html_lib.escape(username)}</span></a></span>'
    )


class _Placeholders:
    """Swaps hashtags and mentions for markers before formatting, back after."""

    def __init__(
        self, tag_href: Callable[[str], str], mentions: Mapping[tuple[str, str | None], str]
    ) -> None:
        self.tag_href, self.mentions = tag_href, mentions
        self.html: list[str] = []

    def _mark(self, fragment: str) -> str:
        self.html.append(fragment)
        return f"{_PH_OPEN}{len(self.html) - 1}{_PH_CLOSE}"

    def protect(self, text: str) -> str:
        text = text.replace(_PH_OPEN, "").replace(_PH_CLOSE, "")

        def mention(m: re.Match[str]) -> str:
            key = (m.group(1).lower(), m.group(2).lower() if m.group(2) else None)
            href = self.mentions.get(key)
            return self._mark(mention_html(m.group(1), href)) if href else m.group(0)

        def hashtag(m: re.Match[str]) -> str:
            tag = normalize_tag(m.group(1))
            if tag is None:
                return m.group(0)
            return self._mark(hashtag_html(m.group(1), self.tag_href(tag)))

        return HASHTAG_RE.sub(hashtag, MENTION_RE.sub(mention, text))

    def restore(self, html: str) -> str:
        return _PH_RE.sub(lambda m: self.html[int(m.group(1))], html)


# --- Markdown ---------------------------------------------------------------------------

_linker_lock = threading.Lock()


def _link_rel(attrs: dict[Any, str], new: bool = False) -> dict[Any, str] | None:
    text = attrs.get("_text", "")
    if new and not text.lower().startswith(("http://", "https://")):
        return None
    attrs[(None, "rel")] = LINK_REL
    return attrs


_LINKER: Final = Linker(
    url_re=build_url_re(protocols=["http", "https"]),
    callbacks=[_link_rel],
    parse_email=False,
    skip_tags={"pre", "code"},
)


def markdown_html(text: str) -> str:
    """Markdown (CommonMark, raw HTML off: vocab/markdown.py) with bare URLs linked."""
    html = render_markdown(text)
    with _linker_lock:
        linked: str = _LINKER.linkify(html)
    return linked


def render(
    text: str,
    *,
    markdown: bool = False,
    tag_href: Callable[[str], str],
    mentions: Mapping[tuple[str, str | None], str] | None = None,
) -> str:
    """Safe HTML for a member's text; `mentions` maps (user, host) → the actor's URL
    (unresolved mentions stay plain text)."""
    marks = _Placeholders(tag_href, mentions or {})
    protected = marks.protect(text)
    html = markdown_html(protected) if markdown else text_to_html(protected)
    return sanitize_html(marks.restore(html))
