"""Incoming ActivityStreams JSON → typed, validated, size-capped dataclasses.

Remote documents are hostile and inconsistent: a property may be a string, an object
with an `id`, a Link with an `href`, or a list of any of these. The helpers below accept
every such shape and return None (or skip the item) for junk; the `parse_*` functions
raise `InvalidObject` only when a document is unusable. `Any` stays at the JSON edge:
everything that leaves this module is typed. HTML is sanitised here, so the dataclasses
are always safe to render.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from t3r1_fed.vocab.context import AS_PUBLIC, is_public
from t3r1_fed.vocab.sanitize import plain_text, sanitize_html
from t3r1_fed.vocab.shapes import (  # re-exported: the public helpers live there
    ACTOR_TYPES,
    BLURHASH_RE,
    KIND_BY_MEDIA,
    MAX_ALSO_KNOWN_AS,
    MAX_ALT_TEXT_CHARS,
    MAX_ATTACHMENTS_PARSED,
    MAX_CONTENT_CHARS,
    MAX_CW_CHARS,
    MAX_FIELD_VALUE_CHARS,
    MAX_FIELDS,
    MAX_NAME_CHARS,
    MAX_PEM_CHARS,
    MAX_POLL_OPTION_CHARS,
    MAX_POLL_OPTIONS,
    MAX_RECIPIENTS,
    MAX_SCAN,
    MAX_SUMMARY_CHARS,
    MAX_TAGS,
    MAX_TITLE_CHARS,
    MAX_USERNAME_CHARS,
    OPENNESS,
    InvalidObject,
    Visibility,
    as_list,
    best_link,
    content_html,
    datetime_field,
    first_id,
    http_url,
    id_of,
    ids_of,
    image_url,
    int_field,
    iri_str,
    media_type_of,
    origin,
    str_field,
    text_field,
    type_list,
    types_of,
)

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
    keys = [k for k in as_list(doc.get("publicKey"))[:MAX_SCAN] if isinstance(k, Mapping)]
    for key in keys:
        key_id, pem = http_url(key.get("id")), key.get("publicKeyPem")
        if (
            key_id is not None
            and id_of(key.get("owner")) == actor_id
            and origin(key_id) == origin(actor_id)
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
        for item in as_list(v)[:MAX_SCAN]
        if "PropertyValue" in types_of(item) and (name := text_field(item, "name", MAX_NAME_CHARS))
    ]
    return fields[:MAX_FIELDS]


def _username_from_id(actor_id: str) -> str:
    """A name for an actor that publishes no preferredUsername: its id's last path segment."""
    parts = urlsplit(actor_id)
    return unquote(parts.path.rstrip("/").rpartition("/")[2]) or parts.hostname or actor_id


def parse_actor(doc: Mapping[str, Any], *, derive_username: bool = False) -> RemoteActor:
    """A Person, Group, Service, Application or Organization, validated (INTEROP §2).

    `preferredUsername` is optional in ActivityPub. With `derive_username` (the resolver,
    which must still verify such an actor's signatures) a missing one is derived from the
    id instead of rejecting the actor (fediverse-pasture's emily/frank personas).
    """
    actor_id, types = _id_and_types(doc)
    actor_type = next((t for t in types if t in ACTOR_TYPES), None)
    if actor_type is None:
        raise InvalidObject(f"not an actor type: {types[:3]}")
    inbox = http_url(doc.get("inbox"))
    if inbox is None:
        raise InvalidObject("missing or non-http(s) inbox")
    username = doc.get("preferredUsername")
    if derive_username and (username is None or username == ""):
        username = _username_from_id(actor_id)[:MAX_USERNAME_CHARS]
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
    also_known_as = [u for u in map(http_url, as_list(doc.get("alsoKnownAs"))[:MAX_SCAN]) if u]
    return RemoteActor(
        id=actor_id,
        type=actor_type,
        preferred_username=username,
        name=text_field(doc, "name", MAX_NAME_CHARS),
        summary_html=(sanitize_html(summary) or None) if summary else None,
        url=best_link(doc.get("url")),
        icon_url=image_url(doc.get("icon")),
        image_url=image_url(doc.get("image")),
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
        openness=openness if openness in OPENNESS else None,
        published=datetime_field(doc.get("published")),
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
    url = best_link(item.get("url")) or http_url(item.get("href"))
    if url is None:
        return None
    blurhash = item.get("blurhash")
    if not isinstance(blurhash, str) or not BLURHASH_RE.fullmatch(blurhash):
        blurhash = None
    media_type = media_type_of(item.get("mediaType"))
    kind = next(iter(type_list(item)), default_type)
    if kind == "Link" and media_type:  # a Link to a file: name it by what it holds
        kind = KIND_BY_MEDIA.get(media_type.split("/", 1)[0], kind)
    return Attachment(
        url=url,
        media_type=media_type,
        name=text_field(item, "name", MAX_ALT_TEXT_CHARS),
        type=kind,
        width=int_field(item.get("width"), 100_000),
        height=int_field(item.get("height"), 100_000),
        blurhash=blurhash,
    )


def _media_links(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Video/audio Links of `url` and of their `tag` (PeerTube lists its files there)."""
    found: list[Mapping[str, Any]] = []
    for link in as_list(doc.get("url"))[:MAX_SCAN]:
        if isinstance(link, Mapping):
            for candidate in [link, *as_list(link.get("tag"))[:MAX_SCAN]]:
                media_type = (
                    media_type_of(candidate.get("mediaType"))
                    if isinstance(candidate, Mapping)
                    else None
                )
                if media_type and media_type.startswith(("video/", "audio/")):
                    found.append(candidate)
    return found


def _attachments(doc: Mapping[str, Any], obj_type: str) -> list[Attachment]:
    media = obj_type in ("Video", "Audio")
    items = as_list(doc.get("attachment"))[:MAX_SCAN] or (_media_links(doc) if media else [])
    parsed = (_attachment(item, obj_type if media else "Document") for item in items)
    return [a for a in parsed if a is not None][:MAX_ATTACHMENTS_PARSED]


def _tags(v: Any) -> list[Tag]:
    tags: list[Tag] = []
    for item in as_list(v)[:MAX_SCAN]:
        kind = next((t for t in type_list(item) if t in ("Mention", "Hashtag")), None)
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
        name, replies = text_field(item, "name", MAX_POLL_OPTION_CHARS), item.get("replies")
        if name is not None:
            votes = int_field(replies.get("totalItems")) if isinstance(replies, Mapping) else None
            options.append(PollOption(name, votes))
    end_time = datetime_field(doc.get("endTime")) or datetime_field(doc.get("closed"))
    return Poll(options, multiple, end_time, int_field(doc.get("votersCount"))) if options else None


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
    types = type_list(doc)
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
    summary = text_field(doc, "summary", MAX_CONTENT_CHARS)
    to, cc, audience = (_recipients(doc.get(k)) for k in ("to", "cc", "audience"))
    tags = _tags(doc.get("tag"))
    mentions = {t.href for t in tags if t.type == "Mention" and t.href}
    return RemoteObject(
        id=object_id,
        type=types[0],
        attributed_to=next(filter(None, map(http_url, as_list(doc.get("attributedTo")))), None),
        name=text_field(doc, "name", MAX_TITLE_CHARS),
        summary=(plain_text(summary, MAX_CW_CHARS) or None) if summary else None,
        content_html=sanitize_html(raw_html[:MAX_CONTENT_CHARS]) if raw_html else "",
        language=language,
        url=best_link(doc.get("url")),
        in_reply_to=http_url(first_id(doc.get("inReplyTo"))),
        published=datetime_field(doc.get("published")),
        updated=datetime_field(doc.get("updated")),
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


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the inbox checks before storing an activity (receive.py): a subset of Activity."""

    id: str
    type: str
    actor: str
    object: str | dict[str, Any] | None  # as sent: an IRI or the embedded object
    object_id: str | None
    object_type: str | None


def parse_envelope(doc: Mapping[str, Any]) -> Envelope:
    """parse_activity's checks and its id, type, actor and object fields, nothing else.

    Raises InvalidObject exactly when parse_activity does (only id, type and actor are
    required); the addressing, target and dates are left for the worker's parse_activity.
    """
    activity_id, types = _id_and_types(doc)
    actor = http_url(first_id(doc.get("actor")))
    if actor is None:
        raise InvalidObject("missing or non-http(s) actor")
    obj = next((o for o in as_list(doc.get("object")) if isinstance(o, dict) or iri_str(o)), None)
    return Envelope(activity_id, types[0], actor, obj, id_of(obj), next(iter(type_list(obj)), None))


def parse_activity(doc: Mapping[str, Any]) -> Activity:
    """An activity's envelope; an embedded object is left for parse_object/parse_actor."""
    activity_id, types = _id_and_types(doc)
    actor = http_url(first_id(doc.get("actor")))
    if actor is None:
        raise InvalidObject("missing or non-http(s) actor")
    obj = next((o for o in as_list(doc.get("object")) if isinstance(o, dict) or iri_str(o)), None)
    return Activity(
        id=activity_id,
        type=types[0],
        actor=actor,
        object=obj,
        object_id=id_of(obj),
        object_ids=ids_of(doc.get("object"))[:MAX_RECIPIENTS],
        object_type=next(iter(type_list(obj)), None),
        target=id_of(doc.get("target")),
        to=_recipients(doc.get("to"))[:MAX_RECIPIENTS],
        cc=_recipients(doc.get("cc"))[:MAX_RECIPIENTS],
        audience=_recipients(doc.get("audience"))[:MAX_RECIPIENTS],
        published=datetime_field(doc.get("published")),
        raw=doc if isinstance(doc, dict) else dict(doc),
    )


__all__ = [
    "ACTOR_TYPES",
    "BLURHASH_RE",
    "KIND_BY_MEDIA",
    "MAX_ALSO_KNOWN_AS",
    "MAX_ALT_TEXT_CHARS",
    "MAX_ATTACHMENTS_PARSED",
    "MAX_CONTENT_CHARS",
    "MAX_CW_CHARS",
    "MAX_FIELDS",
    "MAX_FIELD_VALUE_CHARS",
    "MAX_NAME_CHARS",
    "MAX_PEM_CHARS",
    "MAX_POLL_OPTIONS",
    "MAX_POLL_OPTION_CHARS",
    "MAX_RECIPIENTS",
    "MAX_SCAN",
    "MAX_SUMMARY_CHARS",
    "MAX_TAGS",
    "MAX_TITLE_CHARS",
    "MAX_USERNAME_CHARS",
    "OPENNESS",
    "Activity",
    "Attachment",
    "Envelope",
    "InvalidObject",
    "Poll",
    "PollOption",
    "RemoteActor",
    "RemoteObject",
    "Tag",
    "Visibility",
    "as_list",
    "content_html",
    "first_id",
    "http_url",
    "id_of",
    "ids_of",
    "parse_activity",
    "parse_actor",
    "parse_envelope",
    "parse_object",
    "str_field",
    "types_of",
]
