"""Incoming ActivityStreams JSON → typed, validated, size-capped dataclasses.

Remote documents are hostile and inconsistent: a property may be a string, an object
with an `id`, a Link with an `href`, or a list of any of these. The helpers below accept
every such shape and return None (or skip the item) for junk; the `parse_*` functions
raise `InvalidObject` only when a document is unusable. `Any` stays at the JSON edge:
everything that leaves this module is typed. HTML is sanitised here, so the dataclasses
are always safe to render.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from t3r1_fed.vocab.context import AS_PUBLIC, is_public
from t3r1_fed.vocab.sanitize import plain_text, sanitize_html, text_to_html

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
_MAX_SCAN: Final = 200  # list items examined when looking for URLs, keys or fields

ACTOR_TYPES: Final = frozenset({"Person", "Group", "Service", "Application", "Organization"})
LINK_TYPES: Final = frozenset({"Link", "Mention", "Hashtag"})
Visibility = Literal["public", "unlisted", "private", "direct"]

_IRI_RE: Final = re.compile(r"[^\s\x00-\x1f\x7f]+")
_LANGUAGE_RE: Final = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8}){0,4}")
_MEDIA_TYPE_RE: Final = re.compile(r"[\w.+-]+/[\w.+-]+")
_BLURHASH_RE: Final = re.compile(r"[0-9A-Za-z#$%*+,\-.:;=?@\[\]^_{|}~]{6,100}")
_OPENNESS: Final = frozenset({"open", "moderated", "invite_only"})
_KIND_BY_MEDIA: Final = {"image": "Image", "video": "Video", "audio": "Audio"}


class InvalidObject(ValueError):
    """A remote document we cannot use (missing essentials, failed checks, limits)."""


# --- shapes ---------------------------------------------------------------------------


def as_list(v: Any) -> list[Any]:
    """`v` as a list: None → [], a list as is, anything else → [v]."""
    return [] if v is None else v if isinstance(v, list) else [v]


def _iri(v: Any) -> str | None:
    ok = isinstance(v, str) and len(v) <= MAX_IRI_CHARS and _IRI_RE.fullmatch(v)
    return v if ok else None


def _types(obj: Any) -> list[str]:
    """The `type` values of an object, in document order."""
    if not isinstance(obj, Mapping):
        return []
    return [t for t in as_list(obj.get("type")) if isinstance(t, str) and 0 < len(t) <= 64]


def types_of(obj: Any) -> set[str]:
    """The `type` values of an object (string or list); empty for non-objects."""
    return set(_types(obj))


def id_of(v: Any) -> str | None:
    """The IRI a value refers to: a string, an object's `id`, or a Link's `href`."""
    if isinstance(v, Mapping):
        ident = _iri(v.get("id"))
        return ident if ident or not types_of(v) & LINK_TYPES else _iri(v.get("href"))
    return _iri(v)


def ids_of(v: Any) -> list[str]:
    """Every IRI in a value (string, object, Link or a list of them), deduplicated."""
    return list(dict.fromkeys(i for i in map(id_of, as_list(v)) if i is not None))


def first_id(v: Any) -> str | None:
    """The first IRI in a value, or None."""
    return next((i for i in map(id_of, as_list(v)) if i is not None), None)


def http_url(v: Any) -> str | None:
    """`id_of(v)` if it is an absolute http(s) URL with a host, else None."""
    iri = id_of(v)
    try:
        parts = urlsplit(iri or "")
        ok = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        return iri if ok and (parts.port or 0) >= 0 else None  # .port raises if malformed
    except ValueError:
        return None


def _origin(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme.lower() == "https" else 80)


def str_field(obj: Any, key: str, max_len: int) -> str | None:
    """`obj[key]` if it is a non-empty string, truncated to `max_len`; else None."""
    v = obj.get(key) if isinstance(obj, Mapping) else None
    return v[:max_len] if isinstance(v, str) and v else None


def _text_field(obj: Mapping[str, Any], key: str, max_len: int) -> str | None:
    """A stripped text property, or else the first entry of its map (`nameMap` …)."""
    value = str_field(obj, key, max_len)
    if value is None and isinstance(language_map := obj.get(key + "Map"), Mapping):
        value = next((v[:max_len] for v in language_map.values() if isinstance(v, str)), None)
    return (value.strip() or None) if value else None


def _language(v: Any) -> str | None:
    if isinstance(v, Mapping):  # Lemmy and PeerTube: {"identifier": "fr", "name": …}
        v = v.get("identifier")
    return v if isinstance(v, str) and len(v) <= 35 and _LANGUAGE_RE.fullmatch(v) else None


def _media_type(v: Any) -> str | None:
    ok = isinstance(v, str) and len(v) <= 255 and _MEDIA_TYPE_RE.match(v)
    return v.lower() if ok else None


def _datetime(v: Any) -> datetime | None:
    """An ISO 8601 timestamp as an aware UTC datetime (naive ones are taken as UTC)."""
    try:
        dt = datetime.fromisoformat(v) if isinstance(v, str) and len(v) <= 64 else None
        return dt and (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _int(v: Any, maximum: int = 1_000_000_000) -> int | None:
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
    if content and _media_type(obj.get("mediaType")) in ("text/plain", "text/markdown"):
        content = text_to_html(content[:MAX_CONTENT_CHARS])
    return content or None, language


def _best_link(v: Any) -> str | None:
    """From a `url`-like value (URL, Link, or a list): an HTML page first, then https."""
    links: list[tuple[str, str]] = []
    for item in as_list(v)[:_MAX_SCAN]:
        url = http_url(item.get("href") if isinstance(item, Mapping) else item)
        media_type = _media_type(item.get("mediaType")) if isinstance(item, Mapping) else None
        if url is not None:
            links.append((url, media_type or ""))
    ranked = sorted(links, key=lambda u: (not u[1].startswith("text/html"), u[0][:6] != "https:"))
    return ranked[0][0] if ranked else None


def _image_url(v: Any) -> str | None:
    """URL of an icon/image: a URL, an Image with `url`, or a list (the widest wins)."""
    best, best_width = None, -1
    for item in as_list(v)[:_MAX_SCAN]:
        if isinstance(item, Mapping):
            url, width = _best_link(item.get("url")), _int(item.get("width")) or 0
        else:
            url, width = http_url(item), 0
        if url is not None and width > best_width:
            best, best_width = url, width
    return best


# --- actors ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteActor:
    id: str
    type: str  # one of ACTOR_TYPES
    preferred_username: str
    name: str | None
    summary_html: str | None  # sanitised
    url: str | None
    icon_url: str | None
    image_url: str | None
    inbox: str
    outbox: str | None
    shared_inbox: str | None
    followers: str | None
    following: str | None
    featured: str | None
    moderators: str | None  # `moderators`, or a Group's `attributedTo` collection (Lemmy)
    members: str | None  # Mobilizon / t3r1 members collection
    manually_approves_followers: bool
    discoverable: bool
    indexable: bool
    posting_restricted_to_mods: bool
    openness: str | None  # open | moderated | invite_only (Mobilizon, t3r1)
    published: datetime | None
    key_id: str | None
    public_key_pem: str | None
    key_owner: str | None  # always `id` when a key is present (checked)
    also_known_as: list[str]
    fields: list[tuple[str, str]]  # (name, sanitised value HTML)


def _owned_key(doc: Mapping[str, Any], actor_id: str) -> tuple[str, str] | None:
    """(key id, PEM) of the actor's own key (INTEROP §7.5); None when it publishes none.

    `publicKey` may be an object or a list; the key must name the actor as `owner`,
    live on the actor's origin and carry a PEM. Keys that all fail → InvalidObject.
    """
    keys = [k for k in as_list(doc.get("publicKey"))[:_MAX_SCAN] if isinstance(k, Mapping)]
    for key in keys:
        key_id, pem = http_url(key.get("id")), key.get("publicKeyPem")
        if (
            key_id is not None
            and id_of(key.get("owner")) == actor_id
            and _origin(key_id) == _origin(actor_id)
            and isinstance(pem, str)
            and len(pem) <= MAX_PEM_CHARS
            and pem.lstrip().startswith("-----BEGIN ")
        ):
            return key_id, pem
    if keys:
        raise InvalidObject("publicKey is not owned by the actor (owner, key id host, PEM)")
    return None


def _fields(v: Any) -> list[tuple[str, str]]:
    """Profile fields: PropertyValue attachments as (name, sanitised value)."""
    fields = [
        (name, sanitize_html(str_field(item, "value", MAX_FIELD_VALUE_CHARS) or ""))
        for item in as_list(v)[:_MAX_SCAN]
        if "PropertyValue" in types_of(item) and (name := _text_field(item, "name", MAX_NAME_CHARS))
    ]
    return fields[:MAX_FIELDS]


def parse_actor(doc: Mapping[str, Any]) -> RemoteActor:
    """A Person, Group, Service, Application or Organization, validated (INTEROP §2)."""
    actor_id, types = _id_and_types(doc)
    actor_type = next((t for t in types if t in ACTOR_TYPES), None)
    if actor_type is None:
        raise InvalidObject(f"not an actor type: {types[:3]}")
    inbox = http_url(doc.get("inbox"))
    if inbox is None:
        raise InvalidObject("missing or non-http(s) inbox")
    username = doc.get("preferredUsername")
    if not isinstance(username, str) or not username.strip():
        raise InvalidObject("missing preferredUsername")
    if len(username) > MAX_USERNAME_CHARS:
        raise InvalidObject("preferredUsername too long")
    key = _owned_key(doc, actor_id)
    endpoints: Mapping[str, Any] = {}
    if isinstance(doc.get("endpoints"), Mapping):
        endpoints = doc["endpoints"]
    moderators = http_url(doc.get("moderators"))
    if moderators is None and actor_type == "Group" and isinstance(doc.get("attributedTo"), str):
        moderators = http_url(doc.get("attributedTo"))  # Lemmy: the moderators collection
    summary = str_field(doc, "summary", MAX_SUMMARY_CHARS)
    openness = doc.get("openness")
    also_known_as = [u for u in map(http_url, as_list(doc.get("alsoKnownAs"))[:_MAX_SCAN]) if u]
    return RemoteActor(
        id=actor_id,
        type=actor_type,
        preferred_username=username,
        name=_text_field(doc, "name", MAX_NAME_CHARS),
        summary_html=(sanitize_html(summary) or None) if summary else None,
        url=_best_link(doc.get("url")),
        icon_url=_image_url(doc.get("icon")),
        image_url=_image_url(doc.get("image")),
        inbox=inbox,
        outbox=http_url(doc.get("outbox")),
        shared_inbox=http_url(endpoints.get("sharedInbox")) or http_url(doc.get("sharedInbox")),
        followers=http_url(doc.get("followers")),
        following=http_url(doc.get("following")),
        featured=http_url(doc.get("featured")),
        moderators=moderators,
        members=http_url(doc.get("members")) or http_url(endpoints.get("members")),
        manually_approves_followers=doc.get("manuallyApprovesFollowers") is True,
        discoverable=doc.get("discoverable") is True,
        indexable=doc.get("indexable") is True,
        posting_restricted_to_mods=doc.get("postingRestrictedToMods") is True,
        openness=openness if openness in _OPENNESS else None,
        published=_datetime(doc.get("published")),
        key_id=key[0] if key else None,
        public_key_pem=key[1] if key else None,
        key_owner=actor_id if key else None,
        also_known_as=also_known_as[:MAX_ALSO_KNOWN_AS],
        fields=_fields(doc.get("attachment")),
    )


# --- content objects ------------------------------------------------------------------


@dataclass(frozen=True)
class Attachment:
    url: str
    media_type: str | None
    name: str | None  # alt text
    type: str  # Document, Image, Video, Audio, Link …
    width: int | None
    height: int | None
    blurhash: str | None


@dataclass(frozen=True)
class Tag:
    type: str  # "Mention" | "Hashtag"
    name: str | None  # "@user@host" / "#tag" as sent; always set for hashtags
    href: str | None  # always set for mentions


@dataclass(frozen=True)
class PollOption:
    name: str
    votes: int | None


@dataclass(frozen=True)
class Poll:
    options: list[PollOption]
    multiple: bool  # anyOf (several choices) rather than oneOf
    end_time: datetime | None
    voters_count: int | None


@dataclass(frozen=True)
class RemoteObject:
    id: str
    type: str
    attributed_to: str | None  # the first id in attributedTo
    name: str | None  # title
    summary: str | None  # content warning / excerpt, plain text
    content_html: str  # sanitised; "" when none
    language: str | None
    url: str | None
    in_reply_to: str | None
    published: datetime | None
    updated: datetime | None
    to: list[str]  # the public collection always spelled AS_PUBLIC
    cc: list[str]
    audience: list[str]
    context: str | None  # FEP-7888 thread context, when it is a URL
    sensitive: bool
    attachments: list[Attachment]  # up to MAX_ATTACHMENTS_PARSED
    tags: list[Tag]  # Mention and Hashtag, up to MAX_TAGS
    poll: Poll | None  # Question only
    is_public: bool
    visibility: Visibility


def _attachment(item: Any, default_type: str) -> Attachment | None:
    if not isinstance(item, Mapping):
        url = http_url(item)
        return Attachment(url, None, None, "Link", None, None, None) if url else None
    url = _best_link(item.get("url")) or http_url(item.get("href"))
    if url is None:
        return None
    blurhash = item.get("blurhash")
    if not isinstance(blurhash, str) or not _BLURHASH_RE.fullmatch(blurhash):
        blurhash = None
    media_type = _media_type(item.get("mediaType"))
    kind = next(iter(_types(item)), default_type)
    if kind == "Link" and media_type:  # a Link to a file: name it by what it holds
        kind = _KIND_BY_MEDIA.get(media_type.split("/", 1)[0], kind)
    return Attachment(
        url=url,
        media_type=media_type,
        name=_text_field(item, "name", MAX_ALT_TEXT_CHARS),
        type=kind,
        width=_int(item.get("width"), 100_000),
        height=_int(item.get("height"), 100_000),
        blurhash=blurhash,
    )


def _media_links(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Video/audio Links of `url` and of their `tag` (PeerTube lists its files there)."""
    found: list[Mapping[str, Any]] = []
    for link in as_list(doc.get("url"))[:_MAX_SCAN]:
        if isinstance(link, Mapping):
            for candidate in [link, *as_list(link.get("tag"))[:_MAX_SCAN]]:
                media_type = (
                    _media_type(candidate.get("mediaType"))
                    if isinstance(candidate, Mapping)
                    else None
                )
                if media_type and media_type.startswith(("video/", "audio/")):
                    found.append(candidate)
    return found


def _attachments(doc: Mapping[str, Any], obj_type: str) -> list[Attachment]:
    media = obj_type in ("Video", "Audio")
    items = as_list(doc.get("attachment"))[:_MAX_SCAN] or (_media_links(doc) if media else [])
    parsed = (_attachment(item, obj_type if media else "Document") for item in items)
    return [a for a in parsed if a is not None][:MAX_ATTACHMENTS_PARSED]


def _tags(v: Any) -> list[Tag]:
    tags: list[Tag] = []
    for item in as_list(v)[:_MAX_SCAN]:
        kind = next((t for t in _types(item) if t in ("Mention", "Hashtag")), None)
        if kind is None:
            continue
        name, href = str_field(item, "name", MAX_NAME_CHARS), http_url(item.get("href"))
        if (kind == "Mention" and href) or (kind == "Hashtag" and name):
            tags.append(Tag(kind, name, href))
    return tags[:MAX_TAGS]


def _poll(doc: Mapping[str, Any]) -> Poll | None:
    multiple = "anyOf" in doc
    items = [
        i for i in as_list(doc.get("anyOf" if multiple else "oneOf")) if isinstance(i, Mapping)
    ]
    if len(items) > MAX_POLL_OPTIONS:
        raise InvalidObject(f"more than {MAX_POLL_OPTIONS} poll options")
    options: list[PollOption] = []
    for item in items:
        name, replies = _text_field(item, "name", MAX_POLL_OPTION_CHARS), item.get("replies")
        if name is not None:
            votes = _int(replies.get("totalItems")) if isinstance(replies, Mapping) else None
            options.append(PollOption(name, votes))
    end_time = _datetime(doc.get("endTime")) or _datetime(doc.get("closed"))
    return Poll(options, multiple, end_time, _int(doc.get("votersCount"))) if options else None


def _recipients(v: Any) -> list[str]:
    """An addressing list, with the public collection normalised to AS_PUBLIC."""
    return list(dict.fromkeys(AS_PUBLIC if is_public(i) else i for i in ids_of(v)))


def _visibility(
    to: list[str], cc: list[str], audience: list[str], mentions: set[str], followers: str | None
) -> Visibility:
    """INTEROP §4: Public in to → public, in cc → unlisted; followers → private; else direct."""
    if AS_PUBLIC in to:
        return "public"
    if AS_PUBLIC in cc or AS_PUBLIC in audience:
        return "unlisted"
    if followers is not None:  # Mastodon's rule: the author's followers, or direct
        return "private" if followers in to or followers in cc else "direct"
    # Without the followers URL: mentioned actors only → direct; anything else (some
    # collection: the author's or a group's followers) → private.
    return "direct" if set(to) | set(cc) | set(audience) <= mentions else "private"


def _id_and_types(doc: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The http(s) `id` and the types every parsed document must have."""
    if not isinstance(doc, Mapping):
        raise InvalidObject("not a JSON object")
    ident = http_url(doc.get("id")) if isinstance(doc.get("id"), str) else None
    if ident is None:
        raise InvalidObject("missing or non-http(s) id")
    types = _types(doc)
    if not types:
        raise InvalidObject("missing type")
    return ident, types


def parse_object(doc: Mapping[str, Any], *, followers_url: str | None = None) -> RemoteObject:
    """A content object (Note, Page, Article, Question, Event, Video …), sanitised.

    `followers_url` is the author's followers collection: it tells followers-only posts
    from direct messages.
    """
    object_id, types = _id_and_types(doc)
    raw_html, language = content_html(doc)
    summary = _text_field(doc, "summary", MAX_CONTENT_CHARS)
    to, cc, audience = (_recipients(doc.get(k)) for k in ("to", "cc", "audience"))
    tags = _tags(doc.get("tag"))
    mentions = {t.href for t in tags if t.type == "Mention" and t.href}
    return RemoteObject(
        id=object_id,
        type=types[0],
        attributed_to=next(filter(None, map(http_url, as_list(doc.get("attributedTo")))), None),
        name=_text_field(doc, "name", MAX_TITLE_CHARS),
        summary=(plain_text(summary, MAX_CW_CHARS) or None) if summary else None,
        content_html=sanitize_html(raw_html[:MAX_CONTENT_CHARS]) if raw_html else "",
        language=language,
        url=_best_link(doc.get("url")),
        in_reply_to=http_url(first_id(doc.get("inReplyTo"))),
        published=_datetime(doc.get("published")),
        updated=_datetime(doc.get("updated")),
        to=to[:MAX_RECIPIENTS],
        cc=cc[:MAX_RECIPIENTS],
        audience=audience[:MAX_RECIPIENTS],
        context=http_url(doc.get("context")),
        sensitive=doc.get("sensitive") is True,
        attachments=_attachments(doc, types[0]),
        tags=tags,
        poll=_poll(doc) if "Question" in types else None,
        is_public=AS_PUBLIC in to or AS_PUBLIC in cc or AS_PUBLIC in audience,
        visibility=_visibility(to, cc, audience, mentions, followers_url),
    )


# --- activities -----------------------------------------------------------------------


@dataclass(frozen=True)
class Activity:
    id: str
    type: str
    actor: str
    object: str | dict[str, Any] | None  # as sent: an IRI or the embedded object
    object_id: str | None
    object_ids: list[str]  # every object id (a Flag names several)
    object_type: str | None  # the embedded object's type; None when only referenced
    target: str | None
    to: list[str]
    cc: list[str]
    audience: list[str]
    published: datetime | None
    raw: dict[str, Any]


def parse_activity(doc: Mapping[str, Any]) -> Activity:
    """An activity's envelope; an embedded object is left for parse_object/parse_actor."""
    activity_id, types = _id_and_types(doc)
    actor = http_url(first_id(doc.get("actor")))
    if actor is None:
        raise InvalidObject("missing or non-http(s) actor")
    obj = next((o for o in as_list(doc.get("object")) if isinstance(o, dict) or _iri(o)), None)
    return Activity(
        id=activity_id,
        type=types[0],
        actor=actor,
        object=obj,
        object_id=id_of(obj),
        object_ids=ids_of(doc.get("object"))[:MAX_RECIPIENTS],
        object_type=next(iter(_types(obj)), None),
        target=id_of(doc.get("target")),
        to=_recipients(doc.get("to"))[:MAX_RECIPIENTS],
        cc=_recipients(doc.get("cc"))[:MAX_RECIPIENTS],
        audience=_recipients(doc.get("audience"))[:MAX_RECIPIENTS],
        published=_datetime(doc.get("published")),
        raw=doc if isinstance(doc, dict) else dict(doc),
    )
