"""Tables of the Mastodon client API: OAuth applications, authorization codes, tokens.

Secrets (client secrets, codes, tokens) are stored as sha256 hex digests, never in clear.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from t3r1_fed.db.models import Base, BigID, UTCDateTime, utcnow


class OAuthApp(Base):
    """A client registered with POST /api/v1/apps."""

    __tablename__ = "oauth_apps"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    client_secret_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    website: Mapped[str | None] = mapped_column(String(2048))
    redirect_uris: Mapped[str] = mapped_column(Text)  # newline-separated
    scopes: Mapped[str] = mapped_column(String(1024))  # space-separated
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OAuthCode(Base):
    """A single-use, short-lived authorization code."""

    __tablename__ = "oauth_codes"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("oauth_apps.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    redirect_uri: Mapped[str] = mapped_column(String(2048))
    scopes: Mapped[str] = mapped_column(String(1024))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OAuthToken(Base):
    """A bearer access token; `user_id` is None for client_credentials tokens."""

    __tablename__ = "oauth_tokens"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("oauth_apps.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    scopes: Mapped[str] = mapped_column(String(1024))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


ACTOR_FK = "actors.id"
USER_FK = "users.id"


class Notification(Base):
    """A Mastodon notification for a local account (`recipient_id` is its actor).

    `type` is one of mention, status, reblog, follow, follow_request, favourite, poll,
    update. `group_id` names the cooperative concerned (a follow request to a cooperative
    is notified to its moderators)."""

    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey(ACTOR_FK, ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    from_actor_id: Mapped[int] = mapped_column(ForeignKey(ACTOR_FK, ondelete="CASCADE"))
    object_id: Mapped[int | None] = mapped_column(ForeignKey("objects.id", ondelete="CASCADE"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey(ACTOR_FK, ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (Index("ix_notifications_recipient_id_id", "recipient_id", "id"),)


class IdempotencyKey(Base):
    """`Idempotency-Key` of POST /api/v1/statuses: the status it created (kept 1 hour)."""

    __tablename__ = "idempotency_keys"
    user_id: Mapped[int] = mapped_column(ForeignKey(USER_FK, ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    object_id: Mapped[int | None] = mapped_column(ForeignKey("objects.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Marker(Base):
    """Reading positions (`/api/v1/markers`) per timeline: home, notifications."""

    __tablename__ = "markers"
    user_id: Mapped[int] = mapped_column(ForeignKey(USER_FK, ondelete="CASCADE"), primary_key=True)
    timeline: Mapped[str] = mapped_column(String(16), primary_key=True)
    last_read_id: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class UserList(Base):
    """A Mastodon list of followed accounts (`/api/v1/lists`)."""

    __tablename__ = "user_lists"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey(USER_FK, ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(255))
    replies_policy: Mapped[str] = mapped_column(String(16), default="list")
    exclusive: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UserListAccount(Base):
    __tablename__ = "user_list_accounts"
    list_id: Mapped[int] = mapped_column(
        ForeignKey("user_lists.id", ondelete="CASCADE"), primary_key=True
    )
    actor_id: Mapped[int] = mapped_column(
        ForeignKey(ACTOR_FK, ondelete="CASCADE"), primary_key=True
    )


class Filter(Base):
    """A v2 filter (`/api/v2/filters`); v1 filters are views of its keywords."""

    __tablename__ = "filters"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey(USER_FK, ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(255))
    contexts: Mapped[str] = mapped_column(String(255))  # space-separated: home public …
    action: Mapped[str] = mapped_column(String(16), default="warn")  # warn | hide
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FilterKeyword(Base):
    __tablename__ = "filter_keywords"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    filter_id: Mapped[int] = mapped_column(
        ForeignKey("filters.id", ondelete="CASCADE"), index=True
    )
    keyword: Mapped[str] = mapped_column(String(255))
    whole_word: Mapped[bool] = mapped_column(Boolean, default=True)
