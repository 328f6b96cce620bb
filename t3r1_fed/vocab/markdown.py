"""Markdown → safe HTML for FAQ answers and collaborative documents (pure, no database).

markdown-it-py in CommonMark mode with raw HTML disabled (`<script>` typed in a document
stays text) and strikethrough enabled; the result then goes through the same allow-list
as remote HTML (`sanitize_html`), so what we publish is what Mastodon accepts: headings
become `<p><strong>`, `~~strike~~` becomes `<del>`, images are dropped (no `<img>` in
the allow-list: documents link to files instead). Tables are left disabled:
Mastodon's allow-list has no table tags, and the Markdown pipes read better than cells
flattened into loose text.
"""

from __future__ import annotations

from typing import Final

from markdown_it import MarkdownIt

from t3r1_fed.vocab.sanitize import sanitize_html

MARKDOWN_MEDIA_TYPE: Final = "text/markdown"
# A document's Markdown source is capped like remote content (normalize.MAX_CONTENT_CHARS
# is 100 000 characters of HTML; the source is smaller than its rendering).
MAX_MARKDOWN_CHARS: Final = 60_000

_MD: Final = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_MD.enable(["strikethrough"])


def render_markdown(source: str) -> str:
    """The sanitised HTML of a Markdown text ("" for blank input)."""
    if not source.strip():
        return ""
    # Raw HTML is escaped by the parser, so a literal `<s>` here is the strikethrough's.
    html = _MD.render(source).replace("<s>", "<del>").replace("</s>", "</del>")
    return sanitize_html(html)


def markdown_source(source: str) -> dict[str, str]:
    """The `source` property of an object written in Markdown (as Lemmy and Mastodon do)."""
    return {"content": source, "mediaType": MARKDOWN_MEDIA_TYPE}
