"""Mastodon API entities, built in one place (as GoToSocial's `apimodel`).

Every field Mastodon documents for the entity is present, and never fewer than what Tusky,
the strictest parser, requires (../shared/INTEROP.md §6).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed import __version__
from t3r1_fed.config import Settings
from t3r1_fed.db.models import Actor, Follow, Object, User
from t3r1_fed.vocab.sanitize import plain_text

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


async def account_counts(session: AsyncSession, actor_id: int) -> tuple[int, int, int]:
    followers = (await session.execute(
        select(func.count()).select_from(Follow)
        .where(Follow.followee_id == actor_id, Follow.state == "accepted")
    )).scalar_one()
    following = (await session.execute(
        select(func.count()).select_from(Follow)
        .where(Follow.follower_id == actor_id, Follow.state == "accepted")
    )).scalar_one()
    statuses = (await session.execute(
        select(func.count()).select_from(Object)
        .where(Object.author_id == actor_id, Object.deleted_at.is_(None))
    )).scalar_one()
    return followers, following, statuses


async def account(session: AsyncSession, settings: Settings, actor: Actor) -> dict[str, Any]:
    followers, following, statuses = await account_counts(session, actor.id)
    avatar = actor.icon_url or placeholder_image(settings)
    header = placeholder_image(settings)
    created = actor.created_at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
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
        "fields": [],
        "emojis": [],
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
        "last_status_at": None,
        "statuses_count": statuses,
        "followers_count": followers,
        "following_count": following,
    }


async def credential_account(
    session: AsyncSession, settings: Settings, actor: Actor, user: User
) -> dict[str, Any]:
    doc = await account(session, settings, actor)
    pending = (await session.execute(
        select(func.count()).select_from(Follow)
        .where(Follow.followee_id == actor.id, Follow.state == "pending")
    )).scalar_one()
    doc["source"] = {
        "note": plain_text(actor.summary or ""),
        "fields": [],
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


def _configuration_common() -> dict[str, Any]:
    return {
        "statuses": {
            "max_characters": MAX_STATUS_CHARS,
            "max_media_attachments": MAX_MEDIA,
            "characters_reserved_per_url": 23,
        },
        "media_attachments": {
            "supported_mime_types": ["image/jpeg", "image/png", "image/gif", "image/webp"],
            "image_size_limit": 20 * 1024 * 1024,
            "image_matrix_limit": 40_000_000,
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


def instance_v1(
    settings: Settings, *, users: int, statuses: int, domains: int,
    contact: dict[str, Any] | None,
) -> dict[str, Any]:
    conf = _configuration_common()
    conf["accounts"] = {"max_featured_tags": 0}
    return {
        "uri": settings.domain,
        "title": settings.instance_name,
        "short_description": settings.instance_description,
        "description": settings.instance_description,
        "email": settings.contact_email,
        "version": version_string(),
        "urls": {},  # no streaming yet: nothing is advertised
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
    conf = _configuration_common()
    conf["urls"] = {}  # streaming is advertised only once it exists
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

