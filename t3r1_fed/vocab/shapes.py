"""Shapes of hostile ActivityStreams JSON: limits and tolerant accessors.

A property may be a string, an object with an `id`, a Link with an `href`, or a list of
any of these. These helpers accept every such shape and return None (or skip the item)
for junk. Pure functions; `normalize.py` builds the typed documents on top of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from t3r1_fed.vocab.sanitize import text_to_html

# Limits on what we accept (INTEROP §2 and §7.8). Longer strings are truncated, except
# where a note says the document is rejected.
MAX_IRI_CHARS: Final = 2048  # ids and URLs; longer ones are junk (our columns hold 2048)
MAX_USERNAME_CHARS: Final = 2048  # Mastodon: longer preferredUsername → actor rejected
MAX_NAME_CHARS: Final = 255  # actor display name, hashtag and field names (Mastodon)
MAX_SUMMARY_CHARS: Final = 20_000  # actor bio, raw HTML (Mastodon: 20 kB)
MAX_FIELDS: Final = 50  # profile PropertyValue fields (Mastodon)
MAX_FIELD_VALUE_CHARS: Final = 2048
MAX_ALSO_KNOWN_AS: Final = 20
MAX_PEM_CHARS: Final = 8192  # an RSA-8192 public key PEM is ~1.5 kB
MAX_TITLE_CHARS: Final = 1024  # object `name` (Lemmy, Mobilizon and PeerTube cap titles lower)
MAX_CW_CHARS: Final = 5000  # object `summary` as plain text (content warning / excerpt)
# Object `content`, raw HTML. Fits long-form Articles (WordPress, Mobilizon); whole
# documents are capped at 1 MB upstream anyway.
MAX_CONTENT_CHARS: Final = 100_000
MAX_ATTACHMENTS_PARSED: Final = 20
MAX_ATTACHMENTS_SHOWN: Final = 4  # Mastodon shows 4; the API layer applies this one
MAX_ALT_TEXT_CHARS: Final = 1500  # Mastodon's media description limit
MAX_TAGS: Final = 50  # Mention and Hashtag tags kept per object
MAX_POLL_OPTIONS: Final = 20  # more → InvalidObject (a truncated vote would mislead)
MAX_POLL_OPTION_CHARS: Final = 500
MAX_RECIPIENTS: Final = 1000  # kept per addressing list (to, cc, audience)
MAX_SCAN: Final = 200  # list items examined when looking for URLs, keys or fields

ACTOR_TYPES: Final = frozenset({"Person", "Group", "Service", "Application", "Organization"})
LINK_TYPES: Final = frozenset({"Link", "Mention", "Hashtag"})
Visibility = Literal["public", "unlisted", "private", "direct"]

_IRI_RE: Final = re.compile(r"[^\s\x00-\x1f\x7f]+")
_LANGUAGE_RE: Final = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8}){0,4}")
_MEDIA_TYPE_RE: Final = re.compile(r"[\w.+-]+/[\w.+-]+")
BLURHASH_RE: Final = re.compile(r"[0-9A-Za-z#$%*+,\-.:;=?@\[\]^_{|}~]{6,100}")
OPENNESS: Final = frozenset({"open", "moderated", "invite_only"})
KIND_BY_MEDIA: Final = {"image": "Image", "video": "Video", "audio": "Audio"}


class InvalidObject(ValueError):
    """A remote document we cannot use (missing essentials, failed checks, limits)."""


# --- shapes ---------------------------------------------------------------------------


def as_list(v: Any) -> list[Any]:
    """`v` as a list: None → [], a list as is, anything else → [v]."""
    return [] if v is None else v if isinstance(v, list) else [v]


def iri_str(v: Any) -> str | None:
    ok = isinstance(v, str) and len(v) <= MAX_IRI_CHARS and _IRI_RE.fullmatch(v)
    return v if ok else None


def type_list(obj: Any) -> list[str]:
    """The `type` values of an object, in document order."""
    if not isinstance(obj, Mapping):
        return []
    return [t for t in as_list(obj.get("type")) if isinstance(t, str) and 0 < len(t) <= 64]


def types_of(obj: Any) -> set[str]:
    """The `type` values of an object (string or list); empty for non-objects."""
    return set(type_list(obj))


def id_of(v: Any) -> str | None:
    """The IRI a value refers to: a string, an object's `id`, or a Link's `href`."""
    if isinstance(v, Mapping):
        ident = iri_str(v.get("id"))
        return ident if ident or not types_of(v) & LINK_TYPES else iri_str(v.get("href"))
    return iri_str(v)


def ids_of(v: Any) -> list[str]:
    """Every IRI in a value (string, object, Link or a list of them), deduplicated."""
    return list(dict.fromkeys(i for i in map(id_of, as_list(v)) if i is not None))


def first_id(v: Any) -> str | None:
    """The first IRI in a value, or None."""
    return next((i for i in map(id_of, as_list(v)) if i is not None), None)


# An IRI for which urlsplit's answer is known without calling it: lowercase http(s), a
# non-empty host of letters, digits, dots and hyphens, an optional port (checked below),
# then only unreserved characters and slashes (and a fragment of the same).
_PLAIN_HTTP_URL: Final = re.compile(
    r"https?://[A-Za-z0-9.-]+(?::([0-9]{1,5}))?(?:/[A-Za-z0-9._~/-]*)?(?:#[A-Za-z0-9._~/-]*)?"
)


def http_url(v: Any) -> str | None:
    """`id_of(v)` if it is an absolute http(s) URL with a host, else None."""
    iri = id_of(v)
    plain = _PLAIN_HTTP_URL.fullmatch(iri) if iri is not None else None
    if plain is not None and (plain.group(1) is None or int(plain.group(1)) <= 65535):
        return iri  # what _split_http_url returns for it, ~10x faster
    return _split_http_url(iri)


def _split_http_url(iri: str | None) -> str | None:
    """`iri` if urlsplit finds an http(s) scheme, a host and a valid port, else None."""
    try:
        parts = urlsplit(iri or "")
        ok = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        return iri if ok and (parts.port or 0) >= 0 else None  # .port raises if malformed
    except ValueError:
        return None


def origin(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme.lower() == "https" else 80)


def str_field(obj: Any, key: str, max_len: int) -> str | None:
    """`obj[key]` if it is a non-empty string, truncated to `max_len`; else None."""
    v = obj.get(key) if isinstance(obj, Mapping) else None
    return v[:max_len] if isinstance(v, str) and v else None


def text_field(obj: Mapping[str, Any], key: str, max_len: int) -> str | None:
    """A stripped text property, or else the first entry of its map (`nameMap` …)."""
    value = str_field(obj, key, max_len)
    if value is None and isinstance(language_map := obj.get(key + "Map"), Mapping):
        value = next((v[:max_len] for v in language_map.values() if isinstance(v, str)), None)
    return (value.strip() or None) if value else None


def _language(v: Any) -> str | None:
    if isinstance(v, Mapping):  # Lemmy and PeerTube: {"identifier": "fr", "name": …}
        v = v.get("identifier")
    return v if isinstance(v, str) and len(v) <= 35 and _LANGUAGE_RE.fullmatch(v) else None


def media_type_of(v: Any) -> str | None:
    ok = isinstance(v, str) and len(v) <= 255 and _MEDIA_TYPE_RE.match(v)
    return v.lower() if ok else None


def datetime_field(v: Any) -> datetime | None:
    """An ISO 8601 timestamp as an aware UTC datetime (naive ones are taken as UTC)."""
    try:
        dt = datetime.fromisoformat(v) if isinstance(v, str) and len(v) <= 64 else None
        return dt and (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def int_field(v: Any, maximum: int = 1_000_000_000) -> int | None:
    ok = isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= maximum
    return v if ok else None


def content_html(obj: Any) -> tuple[str | None, str | None]:
    """(raw HTML, language) of an object, from `content` or else `contentMap`.

    `content` wins; the language is the `contentMap` key whose value equals it, else the
    only key, else Lemmy's `language` or Mobilizon's `inLanguage`. Plain-text and
    Markdown content (PeerTube) is escaped into HTML; `source` (Lemmy's Markdown) is
    ignored. Neither sanitised nor truncated here: `parse_object` does both.
    """
    if not isinstance(obj, Mapping):
        return None, None
    content = obj.get("content") if isinstance(obj.get("content"), str) else None
    cmap = obj.get("contentMap")
    entries: list[tuple[str, str]] = []
    if isinstance(cmap, Mapping):
        entries = [(k, v) for k, v in cmap.items() if isinstance(k, str) and isinstance(v, str)]
    language: str | None = None
    if content is None and entries:
        language, content = entries[0]
    elif content is not None:
        language = next((k for k, v in entries if v == content), None)
        if language is None and len(entries) == 1:
            language = entries[0][0]  # Mastodon: the same text, serialised differently
    language = _language(language) or _language(obj.get("language"))
    language = language or _language(obj.get("inLanguage"))
    if content and media_type_of(obj.get("mediaType")) in ("text/plain", "text/markdown"):
        content = text_to_html(content[:MAX_CONTENT_CHARS])
    return content or None, language


def best_link(v: Any) -> str | None:
    """From a `url`-like value (URL, Link, or a list): an HTML page first, then https."""
    links: list[tuple[str, str]] = []
    for item in as_list(v)[:MAX_SCAN]:
        url = http_url(item.get("href") if isinstance(item, Mapping) else item)
        media_type = media_type_of(item.get("mediaType")) if isinstance(item, Mapping) else None
        if url is not None:
            links.append((url, media_type or ""))
    ranked = sorted(links, key=lambda u: (not u[1].startswith("text/html"), u[0][:6] != "https:"))
    return ranked[0][0] if ranked else None


def image_url(v: Any) -> str | None:
    """URL of an icon/image: a URL, an Image with `url`, or a list (the widest wins)."""
    best, best_width = None, -1
    for item in as_list(v)[:MAX_SCAN]:
        if isinstance(item, Mapping):
            url, width = best_link(item.get("url")), int_field(item.get("width")) or 0
        else:
            url, width = http_url(item), 0
        if url is not None and width > best_width:
            best, best_width = url, width
    return best
