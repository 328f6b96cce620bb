"""Tables of the Mastodon client API: OAuth applications, authorization codes, tokens.

Secrets (client secrets, codes, tokens) are stored as sha256 hex digests, never in clear.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
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
