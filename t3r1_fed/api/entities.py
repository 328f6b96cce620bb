"""Mastodon API entities, built in one place (as GoToSocial's `apimodel`).

Every field Mastodon documents for the entity is present, and never fewer than what Tusky,
the strictest parser, requires (../shared/INTEROP.md §6).
"""

from __future__ import annotations

import html
import math
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed import __version__
from t3r1_fed.config import Settings
from t3r1_fed.context import Context
from t3r1_fed.coops.directory import shown_fields
from t3r1_fed.db import ids
from t3r1_fed.db.models import Actor, Follow, Object, Share, User
from t3r1_fed.db.models_api import Filter, FilterKeyword, Marker, UserList
from t3r1_fed.db.models_coops import Media, Profile
from t3r1_fed.media.upload import THUMB_SIZE, media_url, thumb_url
from t3r1_fed.vocab.sanitize import plain_text, sanitize_html

MASTODON_VERSION = "4.3.0"
LANGUAGES = ["fr", "en"]
MAX_STATUS_CHARS = 5000
MAX_MEDIA = 4


def version_string() -> str:
    return f"{MASTODON_VERSION} (compatible; t3r1-fed {__version__})"


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def placeholder_image(settings: Settings) -> str:
    return f"{settings.base_url}/api/placeholder.png"


async def _counts(
    session: AsyncSession, col: Any, ids: list[int], *where: Any
) -> dict[int, int]:
    rows = await session.execute(
        select(col, func.count()).where(col.in_(ids), *where).group_by(col)
    )
    return {k: n for k, n in rows}


# Kinds of objects that are statuses (api/statuses_view.STATUS_KINDS; not imported from
# there: statuses_view imports this module).
STATUS_KINDS = ("post", "thread", "reply", "event", "poll")
MAX_FIELDS = 16
MAX_EMOJIS = 64
SHORTCODE = re.compile(r"^[A-Za-z0-9_]{1,64}$")


@dataclass(frozen=True)
class AccountStats:
    """Counters of an account, and its rendering extras (fields, emojis, roles)."""

    followers: int = 0
    following: int = 0
    statuses: int = 0  # its statuses (not its boosts: see accounts_counts)
    last_status: datetime | None = None
    fields: list[dict[str, Any]] = field(default_factory=list)
    emojis: list[dict[str, Any]] = field(default_factory=list)
    roles: list[dict[str, Any]] = field(default_factory=list)


async def account_counts(session: AsyncSession, actor_id: int) -> AccountStats:
    docs = await accounts_counts(session, [actor_id])
    return docs.get(actor_id, AccountStats())


async def accounts_counts(
    session: AsyncSession, actor_ids: list[int]
) -> dict[int, AccountStats]:
    """Counters, profile fields and roles of each actor, in one query for any number
    (correlated subqueries)."""
    if not actor_ids:
        return {}
    followers = (
        select(func.count()).select_from(Follow)
        .where(Follow.followee_id == Actor.id, Follow.state == "accepted").scalar_subquery()
    )
    following = (
        select(func.count()).select_from(Follow)
        .where(Follow.follower_id == Actor.id, Follow.state == "accepted").scalar_subquery()
    )
    own = (Object.author_id == Actor.id, Object.deleted_at.is_(None),
           Object.removed_at.is_(None), Object.kind.in_(STATUS_KINDS))
    # Boosts are not counted in `statuses_count` (Mastodon counts them): counting a
    # cooperative's redistributions on every rendering costs too much without cached
    # counters (bench/timeline.py); `last_status_at` does take them into account.
    statuses = select(func.count()).select_from(Object).where(*own).scalar_subquery()
    # The newest status id tells when it arrived (db/ids.py: time-ordered), as Mastodon's
    # `last_status_at` is the time its latest status was stored; (actor, sid) indexes.
    last_own = select(func.max(Object.sid)).where(*own).scalar_subquery()
    last_boost = select(func.max(Share.sid)).where(Share.actor_id == Actor.id).scalar_subquery()
    admin = exists().where(User.actor_id == Actor.id, User.is_admin.is_(True))
    rows = await session.execute(
        select(Actor.id, followers, following, statuses, last_own, last_boost, admin, Profile)
        .outerjoin(Profile, Profile.actor_id == Actor.id)
        .where(Actor.id.in_(actor_ids))
    )
    out = {}
    for aid, fo, fg, st, lo, lb, is_admin, profile in rows:
        newest = max((int(x) for x in (lo, lb) if x is not None), default=None)
        fields = [{"name": name, "value": html.escape(value), "verified_at": None}
                  for name, value in shown_fields(profile)]
        out[aid] = AccountStats(fo, fg, st, None if newest is None else ids.sid_time(newest),
                                fields, [], [ADMIN_ROLE] if is_admin else [])
    return {a: out.get(a, AccountStats()) for a in actor_ids}


# Mastodon shows highlighted roles on profiles; ours: instance admins (credential_account).
ADMIN_ROLE: dict[str, Any] = {"id": "3", "name": "Admin", "color": ""}


def _raw_doc(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value] if value is not None else []


def remote_fields(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """A remote actor's `PropertyValue` attachments as Mastodon fields (sanitised)."""
    out: list[dict[str, Any]] = []
    for item in _as_list(doc.get("attachment")):
        if not isinstance(item, dict) or item.get("type") != "PropertyValue":
            continue
        name, value = item.get("name"), item.get("value")
        if isinstance(name, str) and isinstance(value, str) and name.strip():
            out.append({"name": plain_text(name)[:255], "value": sanitize_html(value[:2048]),
                        "verified_at": None})
        if len(out) >= MAX_FIELDS:
            break
    return out


def custom_emojis(raw: str | None) -> list[dict[str, Any]]:
    """CustomEmoji entities of the `Emoji` tags of a remote JSON document (referenced,
    never proxied: the remote image URL)."""
    if not raw or '"Emoji"' not in raw:
        return []
    return emojis_of(_raw_doc(raw))


def emojis_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for tag in _as_list(doc.get("tag")):
        if not isinstance(tag, dict) or tag.get("type") != "Emoji":
            continue
        name = tag.get("name")
        icon = tag.get("icon")
        url = icon.get("url") if isinstance(icon, dict) else None
        if not isinstance(name, str) or not isinstance(url, str):
            continue
        code = name.strip(":")
        if SHORTCODE.match(code) and url.startswith(("https://", "http://")):
            out.append({"shortcode": code, "url": url, "static_url": url,
                        "visible_in_picker": False, "category": None})
        if len(out) >= MAX_EMOJIS:
            break
    return out


def account_doc(settings: Settings, actor: Actor, stats: AccountStats) -> dict[str, Any]:
    avatar = actor.icon_url or placeholder_image(settings)
    header = placeholder_image(settings)
    created = actor.created_at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    fields, emojis = stats.fields, stats.emojis
    if not actor.local and actor.raw:
        raw = _raw_doc(actor.raw)
        fields = remote_fields(raw)
        emojis = emojis_of(raw) if '"Emoji"' in actor.raw else []
    last = stats.last_status
    return {
        "id": str(actor.id),
        "username": actor.username,
        "acct": actor.username if actor.local else f"{actor.username}@{actor.domain}",
        "url": actor.url or actor.uri,
        "uri": actor.uri,
        "display_name": actor.name or "",
        "note": actor.summary or "",
        "avatar": avatar,
        "avatar_static": avatar,
        "header": header,
        "header_static": header,
        "locked": actor.manually_approves_followers,
        "fields": fields,
        "emojis": emojis,
        "bot": actor.type in {"Service", "Application"},
        "group": actor.type == "Group",
        "discoverable": actor.discoverable,
        "indexable": False,
        "noindex": True,
        "hide_collections": False,
        "moved": None,
        "suspended": False,
        "limited": False,
        "created_at": iso(created),
        "last_status_at": last.astimezone(UTC).strftime("%Y-%m-%d") if last else None,
        "statuses_count": stats.statuses,
        "followers_count": stats.followers,
        "following_count": stats.following,
        "roles": list(stats.roles),
    }


async def account(session: AsyncSession, settings: Settings, actor: Actor) -> dict[str, Any]:
    return account_doc(settings, actor, await account_counts(session, actor.id))


# Counters of the accounts embedded in statuses, kept briefly per instance (key: domain,
# actor id): a home page names the same few cooperatives again and again, and counting a
# busy cooperative's statuses costs milliseconds. Mastodon's counters are cached too;
# account pages, verify_credentials and listings always count afresh.
STATS_TTL = 10.0
_STATS_MAX = 20_000
_stats_cache: dict[tuple[str, int], tuple[float, AccountStats]] = {}


async def _cached_counts(
    session: AsyncSession, settings: Settings, actor_ids: list[int]
) -> dict[int, AccountStats]:
    now = time.monotonic()
    out: dict[int, AccountStats] = {}
    missing: list[int] = []
    for aid in actor_ids:
        hit = _stats_cache.get((settings.domain, aid))
        if hit is not None and hit[0] > now:
            out[aid] = hit[1]
        else:
            missing.append(aid)
    if missing:
        fresh = await accounts_counts(session, missing)
        if len(_stats_cache) > _STATS_MAX:
            _stats_cache.clear()
        for aid, stats in fresh.items():
            _stats_cache[(settings.domain, aid)] = (now + STATS_TTL, stats)
        out.update(fresh)
    return out


async def accounts(
    session: AsyncSession, settings: Settings, actors: list[Actor], *, cached: bool = False
) -> dict[int, dict[str, Any]]:
    """Account entities by actor id, with the counters of all of them in one query
    (`cached`: counters up to STATS_TTL seconds old, for accounts embedded in statuses)."""
    ids_ = [a.id for a in actors]
    counts = await (_cached_counts(session, settings, ids_) if cached
                    else accounts_counts(session, ids_))
    return {a.id: account_doc(settings, a, counts[a.id]) for a in actors}


async def account_list(
    session: AsyncSession, settings: Settings, actors: list[Actor]
) -> list[dict[str, Any]]:
    """Account entities of `actors`, in order (listings: followers, search …)."""
    docs = await accounts(session, settings, actors)
    return [docs[a.id] for a in actors]


async def credential_account(
    session: AsyncSession, settings: Settings, actor: Actor, user: User
) -> dict[str, Any]:
    doc = await account(session, settings, actor)
    pending = (await session.execute(
        select(func.count()).select_from(Follow)
        .where(Follow.followee_id == actor.id, Follow.state == "pending")
    )).scalar_one()
    profile = (await session.execute(
        select(Profile).where(Profile.actor_id == actor.id))).scalar()
    doc["source"] = {
        "note": plain_text(actor.summary or ""),
        # The directory profile's published fields, as typed (api: HTML-escaped).
        "fields": [{"name": name, "value": value, "verified_at": None}
                   for name, value in shown_fields(profile)],
        "privacy": "public",
        "sensitive": False,
        "language": "fr",
        "follow_requests_count": pending,
        "hide_collections": False,
        "discoverable": actor.discoverable,
        "indexable": False,
    }
    doc["role"] = {
        "id": "-99" if not user.is_admin else "3",
        "name": "Admin" if user.is_admin else "",
        "permissions": "1" if user.is_admin else "0",
        "color": "",
        "highlighted": user.is_admin,
    }
    return doc


def _configuration_common(settings: Settings) -> dict[str, Any]:
    return {
        "statuses": {
            "max_characters": MAX_STATUS_CHARS,
            "max_media_attachments": MAX_MEDIA,
            "characters_reserved_per_url": 23,
        },
        "media_attachments": {
            "supported_mime_types": ["image/jpeg", "image/png", "image/gif", "image/webp"],
            "image_size_limit": settings.media_max_bytes,  # media/upload.py's caps
            "image_matrix_limit": settings.media_max_pixels,
            "video_size_limit": 0,
            "video_frame_rate_limit": 0,
            "video_matrix_limit": 0,
        },
        "polls": {
            "max_options": 10,
            "max_characters_per_option": 100,
            "min_expiration": 300,
            "max_expiration": 2_629_746,
        },
    }


def streaming_url(settings: Settings) -> str:
    """Where clients open the streaming WebSocket: this host (wss://, ws:// over http)."""
    return ("ws://" if settings.scheme == "http" else "wss://") + settings.domain


def instance_v1(
    settings: Settings, *, users: int, statuses: int, domains: int,
    contact: dict[str, Any] | None,
) -> dict[str, Any]:
    conf = _configuration_common(settings)
    conf["accounts"] = {"max_featured_tags": 0}
    return {
        "uri": settings.domain,
        "title": settings.instance_name,
        "short_description": settings.instance_description,
        "description": settings.instance_description,
        "email": settings.contact_email,
        "version": version_string(),
        "urls": {"streaming_api": streaming_url(settings)},  # streaming/handlers.py
        "stats": {"user_count": users, "status_count": statuses, "domain_count": domains},
        "thumbnail": None,
        "languages": LANGUAGES,
        "registrations": False,
        "approval_required": True,
        "invites_enabled": False,
        "configuration": conf,
        "contact_account": contact,
        "rules": [],
    }


def instance_v2(
    settings: Settings, *, active_month: int, contact: dict[str, Any] | None
) -> dict[str, Any]:
    conf = _configuration_common(settings)
    conf["urls"] = {"streaming": streaming_url(settings)}  # streaming/handlers.py
    conf["accounts"] = {"max_featured_tags": 0, "max_pinned_statuses": 0}
    conf["translation"] = {"enabled": False}
    conf["vapid"] = {"public_key": ""}
    return {
        "domain": settings.domain,
        "title": settings.instance_name,
        "version": version_string(),
        # No public repository address is configured yet: the instance itself.
        "source_url": settings.base_url + "/",
        "description": settings.instance_description,
        "usage": {"users": {"active_month": active_month}},
        "thumbnail": {"url": placeholder_image(settings)},
        "icon": [],
        "languages": LANGUAGES,
        "configuration": conf,
        "registrations": {
            "enabled": False, "approval_required": True, "message": None, "url": None,
        },
        "api_versions": {"mastodon": 2},
        "contact": {"email": settings.contact_email, "account": contact},
        "rules": [],
    }



def _fit(width: int, height: int, box: int) -> tuple[int, int]:
    """The size Pillow's `thumbnail((box, box))` gives (media/upload.py's previews)."""
    if width <= box and height <= box:
        return width, height
    aspect = width / height
    if aspect >= 1:
        h = max(min(math.floor(box / aspect), math.ceil(box / aspect),
                    key=lambda n: 0 if n == 0 else abs(aspect - box / n)), 1)
        return box, h
    w = max(min(math.floor(box * aspect), math.ceil(box * aspect),
                key=lambda n: abs(aspect - n / box)), 1)
    return w, box


def _dims(width: int, height: int) -> dict[str, Any]:
    return {"width": width, "height": height, "size": f"{width}x{height}",
            "aspect": width / height}


def media_attachment(ctx: Context, media: Media) -> dict[str, Any]:
    """Mastodon's MediaAttachment, for local uploads and remote references alike.

    Local files: `url` is /media/{key}, `preview_url` its WebP thumbnail (`meta.small`).
    Remote ones are referenced, never proxied: both URLs are the remote file. The focal
    point is not stored (no column), so `meta.focus` is never set.
    """
    kind = media.media_type.split("/", 1)[0]
    mtype = {"image": "image", "video": "video", "audio": "audio"}.get(kind, "unknown")
    if media.remote_url:
        url: str = media.remote_url
        preview = media.remote_url
    else:
        url = media_url(ctx, media.key)
        preview = thumb_url(ctx, media) or url
    meta: dict[str, Any] = {}
    if media.width and media.height:
        meta["original"] = _dims(media.width, media.height)
        if media.thumbnail_key and not media.remote_url:
            meta["small"] = _dims(*_fit(media.width, media.height, THUMB_SIZE))
        else:
            meta["small"] = dict(meta["original"])
    return {
        "id": str(media.id),
        "type": mtype,
        "url": url,
        "preview_url": preview,
        "remote_url": media.remote_url,
        "preview_remote_url": None,
        "text_url": None if media.remote_url else url,
        "meta": meta,
        "description": media.description,
        "blurhash": media.blurhash,
    }


# Lists, markers, filters (api/lists.py, api/markers.py, api/filters*.py).


def user_list(lst: UserList) -> dict[str, Any]:
    return {"id": str(lst.id), "title": lst.title, "replies_policy": lst.replies_policy,
            "exclusive": lst.exclusive}


def marker(m: Marker) -> dict[str, Any]:
    return {"last_read_id": m.last_read_id, "version": m.version, "updated_at": iso(m.updated_at)}


def filter_keyword(k: FilterKeyword) -> dict[str, Any]:
    return {"id": str(k.id), "keyword": k.keyword, "whole_word": k.whole_word}


def filter_v2(flt: Filter, keywords: list[FilterKeyword] | None) -> dict[str, Any]:
    """Filter (v2); without `keywords` and `statuses` when None, as inside a FilterResult.
    Status filters are not supported: `statuses` is always empty."""
    doc: dict[str, Any] = {
        "id": str(flt.id),
        "title": flt.title,
        "context": flt.contexts.split(),
        "expires_at": iso(flt.expires_at) if flt.expires_at else None,
        "filter_action": flt.action,
    }
    if keywords is not None:
        doc["keywords"] = [filter_keyword(k) for k in keywords]
        doc["statuses"] = []
    return doc


def filter_v1(k: FilterKeyword, flt: Filter) -> dict[str, Any]:
    """V1 Filter: a view of one keyword of a v2 filter (`id` is the keyword's)."""
    return {
        "id": str(k.id),
        "phrase": k.keyword,
        "context": flt.contexts.split(),
        "whole_word": k.whole_word,
        "expires_at": iso(flt.expires_at) if flt.expires_at else None,
        "irreversible": flt.action == "hide",
    }
