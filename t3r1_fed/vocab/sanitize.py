"""HTML sanitising for remote content, and HTML/text conversions for local content.

Remote HTML is reduced to the allow-list Mastodon uses (INTEROP §4, §7.14): the same
tags, Mastodon's microformat classes only, links limited to a few schemes and always
`rel="nofollow noopener noreferrer"`. Elements whose content is code or metadata
(`script`, `style`, `iframe`, ...) disappear with their content; other disallowed tags
are unwrapped (their text is kept); headings become `<p><strong>`, as Mastodon does.
"""

from __future__ import annotations

import html as html_lib
import re
import threading
from collections.abc import Iterator, Mapping
from html.parser import HTMLParser
from typing import Any, Final

import bleach
from bleach import html5lib_shim
from bleach.linkifier import Linker, build_url_re

ALLOWED_TAGS: Final = frozenset(
    "p span br a del pre code em strong b i u ul ol li blockquote".split()
)
ALLOWED_ATTRIBUTES: Final[Mapping[str, frozenset[str]]] = {
    "a": frozenset({"href", "rel", "class", "translate"}),
    "span": frozenset({"class", "translate"}),
    "ol": frozenset({"start", "reversed"}),
    "li": frozenset({"value"}),
}
# Mastodon's microformat classes (mentions, hashtags, shortened links, quote fallback).
ALLOWED_CLASSES: Final = frozenset(
    {"h-card", "u-url", "mention", "hashtag", "invisible", "ellipsis", "quote-inline"}
)
ALLOWED_PROTOCOLS: Final = frozenset({"http", "https", "mailto", "xmpp", "matrix"})
LINK_REL: Final = "nofollow noopener noreferrer"

# Removed together with everything inside them.
_DROP_WITH_CONTENT: Final = frozenset(
    "script style iframe object template noscript noembed noframes title applet".split()
)
_HEADINGS: Final = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_SCHEME_RE: Final = re.compile(r"([a-z][a-z0-9+.\-]*):")
_INTEGER_RE: Final = re.compile(r"-?[0-9]{1,9}")
# Characters browsers ignore inside a URL scheme ("java\tscript:").
_URL_IGNORED_RE: Final = re.compile(r"[\x00-\x20\x7f]+")


def _class_tokens(value: str) -> list[str]:
    """The allowed class tokens of a `class` value, deduplicated, in order."""
    tokens: list[str] = []
    for token in value.split():
        if token in ALLOWED_CLASSES and token not in tokens:
            tokens.append(token)
    return tokens


def _allowed_href(value: str) -> bool:
    """Absolute links with an allowed scheme only: no javascript:, data:, or relative URLs."""
    url = _URL_IGNORED_RE.sub("", html_lib.unescape(value)).lower()
    match = _SCHEME_RE.match(url)
    return match is not None and match.group(1) in ALLOWED_PROTOCOLS


def _allow_attribute(tag: str, name: str, value: str) -> bool:
    """bleach attribute filter: the allow-list above plus a check of each value."""
    if name not in ALLOWED_ATTRIBUTES.get(tag, ()):
        return False
    if name == "href":
        return _allowed_href(value)
    if name == "class":
        return bool(_class_tokens(value))
    if name in ("start", "value"):
        return _INTEGER_RE.fullmatch(value.strip()) is not None
    if name == "translate":
        return value.strip().lower() in ("yes", "no")
    return True  # rel (rewritten below), reversed (boolean)


class _PostFilter:
    """html5lib token filter applied after bleach's sanitiser.

    Drops the elements of `_DROP_WITH_CONTENT` with their content, turns headings into
    `<p><strong>`, keeps only allowed class tokens, forces `rel` on links and unwraps
    links left without an `href`. The token stream is well nested (it comes from a
    parsed tree), so a depth counter and a stack suffice.
    """

    def __init__(self, source: Any) -> None:
        self.source = source

    def __iter__(self) -> Iterator[dict[str, Any]]:
        dropping = 0
        kept_links: list[bool] = []
        for token in self.source:
            kind = token["type"]
            name = token.get("name")
            if dropping:
                if name in _DROP_WITH_CONTENT and kind == "StartTag":
                    dropping += 1
                elif name in _DROP_WITH_CONTENT and kind == "EndTag":
                    dropping -= 1
                continue
            if name in _DROP_WITH_CONTENT:
                dropping += kind == "StartTag"
                continue
            if name in _HEADINGS:
                yield from _heading_tokens(kind)
                continue
            if name == "a" and kind == "StartTag":
                has_href = (None, "href") in token["data"]
                kept_links.append(has_href)
                if not has_href:
                    continue
                token["data"][(None, "rel")] = LINK_REL
            elif name == "a" and kind == "EndTag":
                if not (kept_links.pop() if kept_links else False):
                    continue
            if kind in ("StartTag", "EmptyTag") and (None, "class") in token["data"]:
                token["data"][(None, "class")] = " ".join(
                    _class_tokens(token["data"][(None, "class")])
                )
            yield token


def _heading_tokens(kind: str) -> list[dict[str, Any]]:
    if kind == "StartTag":
        return [
            {"type": "StartTag", "name": "p", "namespace": None, "data": {}},
            {"type": "StartTag", "name": "strong", "namespace": None, "data": {}},
        ]
    if kind == "EndTag":
        return [
            {"type": "EndTag", "name": "strong", "namespace": None},
            {"type": "EndTag", "name": "p", "namespace": None},
        ]
    return []


_EtreeWalker: Any = html5lib_shim.getTreeWalker("etree")


class _LinearEtreeWalker(_EtreeWalker):  # type: ignore[misc]
    """html5lib's etree walker without its quadratic step.

    Nodes are tuples (element, index in parent, ancestors, text/tail flag). The stock
    walker keeps only ancestor elements and recomputes each one's index with
    `list(parent).index(…)` (plus a `count` assertion) on the way up: a long run of
    sibling paragraphs cost seconds. Here the ancestor stack keeps (element, index)
    pairs, so every step is O(1); the tokens produced are the same.
    """

    def getFirstChild(self, node: Any) -> Any:
        element, key, parents, flag = node if isinstance(node, tuple) else (node, None, [], None)
        if flag in ("text", "tail"):
            return None
        if element.text:
            return element, key, parents, "text"
        if len(element):
            parents.append((element, key))
            return element[0], 0, parents, None
        return None

    def getNextSibling(self, node: Any) -> Any:
        if not isinstance(node, tuple):
            return None
        element, key, parents, flag = node
        if flag == "text":
            if len(element):
                parents.append((element, key))
                return element[0], 0, parents, None
            return None
        if element.tail and flag != "tail":
            return element, key, parents, "tail"
        if key < len(parents[-1][0]) - 1:
            return parents[-1][0][key + 1], key + 1, parents, None
        return None

    def getParentNode(self, node: Any) -> Any:
        if not isinstance(node, tuple):
            return None
        element, key, parents, flag = node
        if flag == "text":
            return (element, key, parents, None) if parents else element
        parent, parent_key = parents.pop()
        return (parent, parent_key, parents, None) if parents else parent


# Built once and reused for every call. bleach's parser keeps state while it works, so
# a lock serialises callers: safe from worker threads too (html5lib is pure Python, ~1 s
# per 100 kB of dense markup, so big documents are better parsed off the event loop).
_CLEANER: Final = bleach.Cleaner(
    # Headings and the dropped elements are let through bleach so that the parser builds
    # real elements for them (script content is then raw text); _PostFilter handles them.
    tags=ALLOWED_TAGS | _HEADINGS | _DROP_WITH_CONTENT,
    attributes=_allow_attribute,
    protocols=ALLOWED_PROTOCOLS,
    strip=True,
    strip_comments=True,
    filters=[_PostFilter],
)
_CLEANER.walker = _LinearEtreeWalker
_LOCK: Final = threading.Lock()


# html5lib's tree construction is quadratic in the nesting depth (10 000 nested `<ul>`
# take minutes), so deeper input is not parsed as HTML at all (see _DepthProbe).
MAX_NESTING: Final = 100
# Elements the tree builder nests: the tags bleach lets through to it (others become
# text in its tokenizer), less void ones and those whose end tag is implied (p, li).
_NESTING: Final = (ALLOWED_TAGS | _HEADINGS | _DROP_WITH_CONTENT) - {"p", "li", "br"}


class _TooDeep(Exception):
    pass


class _DepthProbe(HTMLParser):
    """Linear scan of the element nesting, stopping as soon as it exceeds MAX_NESTING.

    An end tag closes only the innermost open element: misnested markup such as
    `<b><ul></b>` keeps both open in html5lib's tree, so it must count as nesting.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _NESTING:
            self.stack.append(tag)
            if len(self.stack) > MAX_NESTING:
                raise _TooDeep

    def handle_endtag(self, tag: str) -> None:
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()


def _too_deep(html_text: str) -> bool:
    probe = _DepthProbe()
    try:
        probe.feed(html_text)
        probe.close()
    except _TooDeep:
        return True
    return False


def sanitize_html(html: str) -> str:
    """Remote HTML reduced to the allow-list; safe to embed in our pages and API.

    Pathologically nested input (deeper than MAX_NESTING) is reduced to its text.
    """
    if not html:
        return ""
    if _too_deep(html):
        return text_to_html(plain_text(html))
    with _LOCK:
        cleaned: str = _CLEANER.clean(html)
    return cleaned.strip()


class _TextExtractor(HTMLParser):
    """Collects the text of an HTML fragment; block boundaries become spaces."""

    _SKIP: Final = frozenset({"script", "style", "template", "title", "noscript"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


_WHITESPACE_RE: Final = re.compile(r"\s+")


def plain_text(html: str, limit: int | None = None) -> str:
    """The text of an HTML fragment: tags removed, entities decoded, whitespace collapsed.

    For summaries, logs and search; the result is text, so escape it before putting it
    back into HTML. With `limit`, the result is cut to at most `limit` characters,
    ending with an ellipsis when something was cut.
    """
    if not html:
        return ""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    text = _WHITESPACE_RE.sub(" ", "".join(extractor.parts)).strip()
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)].rstrip() + "…" if limit > 0 else ""
    return text


def _link_attrs(attrs: dict[Any, str], new: bool = False) -> dict[Any, str] | None:
    """Linkify callback: http(s) URLs only (no bare domains), with our `rel`."""
    text = attrs.get("_text", "")
    if new and not text.lower().startswith(("http://", "https://")):
        return None
    attrs[(None, "rel")] = LINK_REL
    attrs.pop((None, "target"), None)
    return attrs


_LINKER: Final = Linker(
    url_re=build_url_re(protocols=["http", "https"]),
    callbacks=[_link_attrs],
    parse_email=False,
)
_PARAGRAPH_BREAK_RE: Final = re.compile(r"\n[ \t]*\n\s*")


def text_to_html(text: str) -> str:
    """HTML for a local post typed as plain text.

    Escapes it, makes paragraphs from blank lines and `<br>` from single newlines, and
    links http(s) URLs with `rel="nofollow noopener noreferrer"`.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        return ""
    paragraphs = (
        "<p>" + html_lib.escape(block.strip(), quote=False).replace("\n", "<br>") + "</p>"
        for block in _PARAGRAPH_BREAK_RE.split(text)
        if block.strip()
    )
    with _LOCK:
        linked: str = _LINKER.linkify("".join(paragraphs))
    return linked
