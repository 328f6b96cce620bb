"""Mastodon API entities as documented (docs.joinmastodon.org/entities, Mastodon 4.3), and
`check(entity, doc)`: the problems of one JSON document against them.

A spec maps attribute names to types. A name ending in `?` may be absent (Mastodon leaves
it out in some cases: `application`, the viewer's flags without a user token …); every other
attribute must be present. Types: `str int bool number dict list null any`, `id` (a
non-empty string: Mastodon ids are strings), `datetime` (ISO 8601 with a time), `date`
(YYYY-MM-DD), `numstr` (digits in a string), `url` (absolute http(s) URL), `enum(a,b)`,
an entity name, `list[T]`, and alternatives `A|B` (`str|null` is nullable). Checking is
recursive: a Status's account, reblog, media, poll … are checked as the entities they
are. Tusky's required fields (../shared/INTEROP.md §6) are all required here too.
"""

from __future__ import annotations

import re
from typing import Any

DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
URL = re.compile(r"^https?://[^\s/]+")

VISIBILITY = "enum(public,unlisted,private,direct)"
NOTIFICATION_TYPES = ("enum(mention,status,reblog,follow,follow_request,favourite,poll,update,"
                      "admin.sign_up,admin.report,severed_relationships,moderation_warning)")

SCHEMAS: dict[str, dict[str, str]] = {
    "Account": {
        "id": "id", "username": "str", "acct": "str", "url": "url", "uri": "url",
        "display_name": "str", "note": "str", "avatar": "url", "avatar_static": "url",
        "header": "url", "header_static": "url", "locked": "bool", "fields": "list[Field]",
        "emojis": "list[CustomEmoji]", "bot": "bool", "group": "bool",
        "discoverable": "bool|null", "noindex?": "bool|null", "moved?": "Account|null",
        "suspended?": "bool", "limited?": "bool", "created_at": "datetime",
        "last_status_at": "date|null", "statuses_count": "int", "followers_count": "int",
        "following_count": "int", "hide_collections": "bool|null", "indexable": "bool",
        "roles": "list[AccountRole]",
    },
    "Field": {"name": "str", "value": "str", "verified_at": "datetime|null"},
    "AccountRole": {"id": "id", "name": "str", "color": "str"},
    "CustomEmoji": {
        "shortcode": "str", "url": "url", "static_url": "url", "visible_in_picker": "bool",
        "category?": "str|null",
    },
    "CredentialAccount": {"source": "Source", "role?": "Role"},  # + Account (see EXTENDS)
    "Source": {
        "note": "str", "fields": "list[Field]", "privacy": VISIBILITY, "sensitive": "bool",
        "language": "str|null", "follow_requests_count": "int",
        "hide_collections?": "bool|null", "discoverable?": "bool|null", "indexable?": "bool",
    },
    "Role": {
        "id": "id", "name": "str", "color": "str", "permissions": "str",
        "highlighted": "bool",
    },
    "Status": {
        "id": "id", "uri": "str", "created_at": "datetime", "account": "Account",
        "content": "str", "visibility": VISIBILITY, "sensitive": "bool",
        "spoiler_text": "str", "media_attachments": "list[MediaAttachment]",
        "application?": "StatusApplication|null", "mentions": "list[Mention]",
        "tags": "list[StatusTag]", "emojis": "list[CustomEmoji]", "reblogs_count": "int",
        "favourites_count": "int", "replies_count": "int", "url": "url|null",
        "in_reply_to_id": "id|null", "in_reply_to_account_id": "id|null",
        "reblog": "Status|null", "poll": "Poll|null", "card": "PreviewCard|null",
        "language": "str|null", "text?": "str|null", "edited_at": "datetime|null",
        "favourited?": "bool", "reblogged?": "bool", "muted?": "bool", "bookmarked?": "bool",
        "pinned?": "bool", "filtered?": "list[FilterResult]",
    },
    "StatusApplication": {"name": "str", "website?": "str|null"},
    "Mention": {"id": "id", "username": "str", "url": "url", "acct": "str"},
    "StatusTag": {"name": "str", "url": "url"},
    "Tag": {
        "name": "str", "url": "url", "history": "list[TagHistory]", "following?": "bool",
        "id?": "id",
    },
    "TagHistory": {"day": "numstr", "uses": "numstr", "accounts": "numstr"},
    "Poll": {
        "id": "id", "expires_at": "datetime|null", "expired": "bool", "multiple": "bool",
        "votes_count": "int", "voters_count": "int|null", "options": "list[PollOption]",
        "emojis": "list[CustomEmoji]", "voted?": "bool", "own_votes?": "list[int]",
    },
    "PollOption": {"title": "str", "votes_count": "int|null"},
    "MediaAttachment": {
        "id": "id", "type": "enum(unknown,image,gifv,video,audio)", "url": "url",
        "preview_url": "url|null", "remote_url": "url|null", "preview_remote_url?": "url|null",
        "text_url?": "url|null", "meta": "dict", "description": "str|null",
        "blurhash": "str|null",
    },
    "PreviewCard": {
        "url": "url", "title": "str", "description": "str", "type": "enum(link,photo,video,rich)",
        "author_name": "str", "author_url": "str", "provider_name": "str",
        "provider_url": "str", "html": "str", "width": "int", "height": "int",
        "image": "url|null", "embed_url": "str", "blurhash": "str|null",
    },
    "FilterResult": {
        "filter": "Filter", "keyword_matches": "list[str]|null",
        "status_matches": "list[id]|null",
    },
    "Filter": {
        "id": "id", "title": "str", "context": "list[str]", "expires_at": "datetime|null",
        "filter_action": "enum(warn,hide,blur)", "keywords?": "list[FilterKeyword]",
        "statuses?": "list[FilterStatus]",
    },
    "FilterKeyword": {"id": "id", "keyword": "str", "whole_word": "bool"},
    "FilterStatus": {"id": "id", "status_id": "id"},
    "FilterV1": {
        "id": "id", "phrase": "str", "context": "list[str]", "expires_at": "datetime|null",
        "irreversible": "bool", "whole_word": "bool",
    },
    "Notification": {
        "id": "id", "type": NOTIFICATION_TYPES, "group_key?": "str",
        "created_at": "datetime", "account": "Account", "status?": "Status|null",
        "report?": "dict|null", "relationship_severance_event?": "dict|null",
        "moderation_warning?": "dict|null",
    },
    "GroupedNotificationsResults": {
        "accounts": "list[Account]", "partial_accounts?": "list[PartialAccountWithAvatar]",
        "statuses": "list[Status]", "notification_groups": "list[NotificationGroup]",
    },
    "NotificationGroup": {
        "group_key": "str", "notifications_count": "int", "type": NOTIFICATION_TYPES,
        "most_recent_notification_id": "id", "page_min_id?": "id", "page_max_id?": "id",
        "latest_page_notification_at?": "datetime|null", "sample_account_ids": "list[id]",
        "status_id?": "id|null", "report?": "dict|null", "event?": "dict|null",
        "moderation_warning?": "dict|null",
    },
    "PartialAccountWithAvatar": {
        "id": "id", "acct": "str", "url": "url", "avatar": "url", "avatar_static": "url",
        "locked": "bool", "bot": "bool",
    },
    "Relationship": {
        "id": "id", "following": "bool", "showing_reblogs": "bool", "notifying": "bool",
        "languages": "list[str]|null", "followed_by": "bool", "blocking": "bool",
        "blocked_by": "bool", "muting": "bool", "muting_notifications": "bool",
        "requested": "bool", "requested_by": "bool", "domain_blocking": "bool",
        "endorsed": "bool", "note": "str",
    },
    "List": {
        "id": "id", "title": "str", "replies_policy": "enum(followed,list,none)",
        "exclusive": "bool",
    },
    "Marker": {"last_read_id": "id", "version": "int", "updated_at": "datetime"},
    "Context": {"ancestors": "list[Status]", "descendants": "list[Status]"},
    "Search": {"accounts": "list[Account]", "statuses": "list[Status]",
               "hashtags": "list[Tag]"},
    "Preferences": {
        "posting:default:visibility": VISIBILITY, "posting:default:sensitive": "bool",
        "posting:default:language": "str|null",
        "reading:expand:media": "enum(default,show_all,hide_all)",
        "reading:expand:spoilers": "bool",
    },
    "Application": {
        "id?": "id", "name": "str", "website": "str|null", "scopes?": "list[str]",
        "redirect_uri?": "str", "redirect_uris?": "list[str]", "vapid_key?": "str",
        "client_id?": "str", "client_secret?": "str", "client_secret_expires_at?": "int",
    },
    "Token": {"access_token": "str", "token_type": "str", "scope": "str", "created_at": "int"},
    "Rule": {"id": "id", "text": "str", "hint?": "str"},
    "InstanceV1": {
        "uri": "str", "title": "str", "short_description": "str", "description": "str",
        "email": "str", "version": "str", "urls": "InstanceV1Urls", "stats": "InstanceStats",
        "thumbnail": "url|null", "languages": "list[str]", "registrations": "bool",
        "approval_required": "bool", "invites_enabled": "bool",
        "configuration": "InstanceV1Configuration", "contact_account": "Account|null",
        "rules": "list[Rule]",
    },
    "InstanceV1Urls": {"streaming_api": "str"},
    "InstanceStats": {"user_count": "int", "status_count": "int", "domain_count": "int"},
    "InstanceV1Configuration": {
        "statuses": "StatusesConfiguration", "media_attachments": "MediaConfiguration",
        "polls": "PollsConfiguration", "accounts?": "dict",
    },
    "StatusesConfiguration": {
        "max_characters": "int", "max_media_attachments": "int",
        "characters_reserved_per_url": "int",
    },
    "MediaConfiguration": {
        "supported_mime_types": "list[str]", "image_size_limit": "int",
        "image_matrix_limit": "int", "video_size_limit": "int",
        "video_frame_rate_limit": "int", "video_matrix_limit": "int",
        "description_limit?": "int",
    },
    "PollsConfiguration": {
        "max_options": "int", "max_characters_per_option": "int", "min_expiration": "int",
        "max_expiration": "int",
    },
    "InstanceV2": {
        "domain": "str", "title": "str", "version": "str", "source_url": "url",
        "description": "str", "usage": "InstanceUsage", "thumbnail": "InstanceThumbnail",
        "icon?": "list[InstanceIcon]", "languages": "list[str]",
        "configuration": "InstanceV2Configuration", "registrations": "InstanceRegistrations",
        "api_versions?": "dict", "contact": "InstanceContact", "rules": "list[Rule]",
    },
    "InstanceUsage": {"users": "InstanceUsers"},
    "InstanceUsers": {"active_month": "int"},
    "InstanceThumbnail": {"url": "url", "blurhash?": "str|null", "versions?": "dict"},
    "InstanceIcon": {"src": "url", "size": "str"},
    "InstanceV2Configuration": {
        "urls": "InstanceV2Urls", "vapid?": "dict", "accounts": "AccountsConfiguration",
        "statuses": "StatusesConfiguration", "media_attachments": "MediaConfiguration",
        "polls": "PollsConfiguration", "translation": "TranslationConfiguration",
    },
    "InstanceV2Urls": {"streaming": "str", "status?": "str|null"},
    "AccountsConfiguration": {"max_featured_tags": "int", "max_pinned_statuses": "int"},
    "TranslationConfiguration": {"enabled": "bool"},
    "InstanceRegistrations": {
        "enabled": "bool", "approval_required": "bool", "message": "str|null",
        "url?": "str|null",
    },
    "InstanceContact": {"email": "str", "account": "Account|null"},
}

# Entities that are another one plus some attributes.
EXTENDS = {"CredentialAccount": "Account"}


def spec_of(entity: str) -> dict[str, str]:
    spec = dict(SCHEMAS[entity])
    base = EXTENDS.get(entity)
    if base is not None:
        spec = {**spec_of(base), **spec}
    return spec


def _split_alternatives(type_: str) -> list[str]:
    """`A|list[B|C]|null` → [`A`, `list[B|C]`, `null`] (bars inside brackets kept)."""
    out, depth, cur = [], 0, ""
    for ch in type_:
        if ch == "|" and depth == 0:
            out.append(cur)
            cur = ""
            continue
        depth += ch in "[("
        depth -= ch in "])"
        cur += ch
    out.append(cur)
    return out


def _one(type_: str, value: Any, path: str) -> list[str] | None:
    """None when `value` is of `type_`; else the problems (possibly empty = just wrong)."""
    simple: dict[str, Any] = {
        "str": str, "dict": dict, "list": list,
    }
    if type_ == "any":
        return None
    if type_ == "null":
        return None if value is None else []
    if type_ in simple:
        return None if isinstance(value, simple[type_]) else []
    if type_ == "bool":
        return None if isinstance(value, bool) else []
    if type_ == "int":
        return None if isinstance(value, int) and not isinstance(value, bool) else []
    if type_ == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else []
    if type_ == "id":
        return None if isinstance(value, str) and value != "" else []
    if type_ == "numstr":
        return None if isinstance(value, str) and value.isdigit() else []
    if type_ == "datetime":
        return None if isinstance(value, str) and DATETIME.match(value) else []
    if type_ == "date":
        return None if isinstance(value, str) and DATE.match(value) else []
    if type_ == "url":
        return None if isinstance(value, str) and URL.match(value) else []
    if type_.startswith("enum("):
        return None if isinstance(value, str) and value in type_[5:-1].split(",") else []
    if type_.startswith("list["):
        if not isinstance(value, list):
            return []
        inner = type_[5:-1]
        errs: list[str] = []
        for i, item in enumerate(value):
            errs += _typed(inner, item, f"{path}[{i}]")
        return errs or None
    if type_ in SCHEMAS:
        if not isinstance(value, dict):
            return []
        return check(type_, value, path) or None
    raise ValueError(f"unknown type {type_!r}")


def _typed(type_: str, value: Any, path: str) -> list[str]:
    nested: list[str] = []
    for alt in _split_alternatives(type_):
        errs = _one(alt, value, path)
        if errs is None:
            return []
        nested += errs
    if nested:  # the right kind of value, with problems inside
        return nested
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return [f"{path}: expected {type_}, got {shown}"]


def check(entity: str, doc: Any, path: str | None = None) -> list[str]:
    """Every problem of `doc` as a Mastodon `entity`: missing attributes, wrong types,
    ids that are not strings, malformed dates, recursively; [] when it conforms."""
    where = path if path is not None else entity
    if not isinstance(doc, dict):
        return [f"{where}: expected an object, got {type(doc).__name__}"]
    errs: list[str] = []
    for key, type_ in spec_of(entity).items():
        name = key.rstrip("?")
        if name not in doc:
            if not key.endswith("?"):
                errs.append(f"{where}.{name}: missing")
            continue
        errs += _typed(type_, doc[name], f"{where}.{name}")
    return errs


def check_list(entity: str, docs: Any, path: str | None = None) -> list[str]:
    where = path if path is not None else f"[{entity}]"
    if not isinstance(docs, list):
        return [f"{where}: expected a list, got {type(docs).__name__}"]
    errs: list[str] = []
    for i, doc in enumerate(docs):
        errs += check(entity, doc, f"{where}[{i}]")
    return errs
