"""SQLAlchemy 2 models. No HTTP and no ActivityStreams knowledge lives here.

Local and remote actors share one table (as in Mastodon's `accounts`): follows, likes and
shares then point at one kind of row whatever the origin. Every remote document keeps its
raw JSON beside the normalised columns.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from t3r1_fed.db import ids

# Integer on SQLite so that the primary key is the rowid and autoincrements.
BigID = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Actor(Base):
    """A Person, Group or Application, local or remote."""

    __tablename__ = "actors"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    uri: Mapped[str] = mapped_column(String(2048), unique=True)
    local: Mapped[bool] = mapped_column(Boolean, default=False)
    type: Mapped[str] = mapped_column(String(32))  # Person | Group | Application | Service …
    username: Mapped[str] = mapped_column(String(2048))
    domain: Mapped[str] = mapped_column(String(255), index=True)
    name: Mapped[str | None] = mapped_column(String(255))
    summary: Mapped[str | None] = mapped_column(Text)  # sanitised HTML
    url: Mapped[str | None] = mapped_column(String(2048))
    icon_url: Mapped[str | None] = mapped_column(String(2048))
    inbox: Mapped[str] = mapped_column(String(2048))
    outbox: Mapped[str | None] = mapped_column(String(2048))
    shared_inbox: Mapped[str | None] = mapped_column(String(2048))
    followers_url: Mapped[str | None] = mapped_column(String(2048))
    following_url: Mapped[str | None] = mapped_column(String(2048))
    featured_url: Mapped[str | None] = mapped_column(String(2048))
    key_id: Mapped[str | None] = mapped_column(String(2048), index=True)
    public_key_pem: Mapped[str | None] = mapped_column(Text)
    private_key_pem: Mapped[str | None] = mapped_column(Text)  # local actors only
    manually_approves_followers: Mapped[bool] = mapped_column(Boolean, default=False)
    discoverable: Mapped[bool] = mapped_column(Boolean, default=True)
    raw: Mapped[str | None] = mapped_column(Text)  # remote actors: the JSON as fetched
    fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_actors_username_domain", "username", "domain"),)


class User(Base):
    """Credentials of a local member; the public face is its Person actor."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"), unique=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Coop(Base):
    """A cooperative: the local side of a Group actor."""

    __tablename__ = "coops"
    actor_id: Mapped[int] = mapped_column(
        ForeignKey("actors.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(64), unique=True)
    openness: Mapped[str] = mapped_column(String(16), default="open")  # open|moderated|invite_only
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    posting_restricted_to_mods: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CoopRole(Base):
    """Local roles in a cooperative (admin, moderator); members are accepted followers."""

    __tablename__ = "coop_roles"
    coop_actor_id: Mapped[int] = mapped_column(
        ForeignKey("actors.id", ondelete="CASCADE"), primary_key=True
    )
    actor_id: Mapped[int] = mapped_column(
        ForeignKey("actors.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(16))  # admin | moderator
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Follow(Base):
    __tablename__ = "follows"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    uri: Mapped[str] = mapped_column(String(2048), unique=True)  # the Follow activity id
    follower_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    followee_id: Mapped[int] = mapped_column(
        ForeignKey("actors.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | accepted
    # Mastodon's follow options: boosts shown in home, a `status` notification per post.
    show_reblogs: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    notify: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (UniqueConstraint("follower_id", "followee_id"),)


class Object(Base):
    """A Note/Article/Page/… local or remote; deleted ones stay as tombstones."""

    __tablename__ = "objects"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    uri: Mapped[str] = mapped_column(String(2048), unique=True)
    local: Mapped[bool] = mapped_column(Boolean, default=False)
    type: Mapped[str] = mapped_column(String(32))
    author_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"), index=True)
    # The cooperative (Group actor) the object was posted into, if any.
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("actors.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str | None] = mapped_column(String(512))
    summary: Mapped[str | None] = mapped_column(Text)
    content: Mapped[str | None] = mapped_column(Text)  # sanitised HTML
    language: Mapped[str | None] = mapped_column(String(16))
    url: Mapped[str | None] = mapped_column(String(2048))
    in_reply_to: Mapped[str | None] = mapped_column(String(2048), index=True)
    context: Mapped[str | None] = mapped_column(String(2048))
    visibility: Mapped[str] = mapped_column(String(16), default="public")
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    raw: Mapped[str] = mapped_column(Text)  # JSON as received, or as we serve it
    published: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # What the object is in its cooperative: post | thread | reply | faq | resource |
    # document | event | poll (see coops/kinds.py).
    kind: Mapped[str] = mapped_column(String(16), default="post", server_default="post", index=True)
    # The thread root for replies (FEP-7888 context owned by the group); NULL for roots.
    thread_id: Mapped[int | None] = mapped_column(
        ForeignKey("objects.id", ondelete="SET NULL"), index=True
    )
    position: Mapped[int | None] = mapped_column(Integer)  # FAQ order, folder order …
    pinned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # in `featured`
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # no new replies
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # moderator removal
    removed_reason: Mapped[str | None] = mapped_column(Text)
    # The status id of the Mastodon client API (db/ids.py), time-sortable with shares.sid.
    sid: Mapped[int] = mapped_column(BigInteger, unique=True, default=ids.object_sid)
    __table_args__ = (Index("ix_objects_author_id_sid", "author_id", "sid"),)


class Share(Base):
    """An Announce (boost) of an object by an actor — a cooperative's redistribution included."""

    __tablename__ = "shares"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    uri: Mapped[str] = mapped_column(String(2048), unique=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    object_id: Mapped[int] = mapped_column(ForeignKey("objects.id", ondelete="CASCADE"), index=True)
    published: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The boost's status id (db/ids.py): odd, in the same time order as objects.sid.
    sid: Mapped[int] = mapped_column(BigInteger, unique=True, default=ids.share_sid)
    __table_args__ = (
        UniqueConstraint("actor_id", "object_id"),
        Index("ix_shares_actor_id_sid", "actor_id", "sid"),
    )


class Mention(Base):
    """Actors an object mentions (its `Mention` tags that name a known actor)."""

    __tablename__ = "mentions"
    object_id: Mapped[int] = mapped_column(
        ForeignKey("objects.id", ondelete="CASCADE"), primary_key=True
    )
    actor_id: Mapped[int] = mapped_column(
        ForeignKey("actors.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class IdSlot(Base):
    """One row per process start: `id % 256` is the process's slot in status ids."""

    __tablename__ = "id_slots"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Like(Base):
    __tablename__ = "likes"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    uri: Mapped[str] = mapped_column(String(2048), unique=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    object_id: Mapped[int] = mapped_column(ForeignKey("objects.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (UniqueConstraint("actor_id", "object_id"),)


class Activity(Base):
    """An activity we published: served at its id, delivered through `deliveries`.

    `body` is the exact JSON we sign and send, serialised once; `digest` is its SHA-256
    `Digest` header value, also computed once for the whole fan-out.
    """

    __tablename__ = "activities"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    uri: Mapped[str] = mapped_column(String(2048), unique=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    object_uri: Mapped[str | None] = mapped_column(String(2048), index=True)
    public: Mapped[bool] = mapped_column(Boolean, default=True)
    body: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Delivery(Base):
    """One activity to one inbox: the durable outbound queue."""

    __tablename__ = "deliveries"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"))
    inbox: Mapped[str] = mapped_column(String(2048))
    host: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending|done|failed|gone
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    __table_args__ = (
        UniqueConstraint("activity_id", "inbox"),
        Index("ix_deliveries_due", "state", "next_attempt_at"),
    )


class InboxItem(Base):
    """A verified inbound activity waiting for (or done with) processing."""

    __tablename__ = "inbox_items"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    activity_uri: Mapped[str] = mapped_column(String(2048), unique=True)
    actor_uri: Mapped[str] = mapped_column(String(2048))
    # The local actor whose inbox received it; NULL for the shared inbox.
    recipient: Mapped[str | None] = mapped_column(String(2048))
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending|done|ignored|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[str | None] = mapped_column(Text)  # what the dispatcher did or why not
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    __table_args__ = (Index("ix_inbox_items_due", "state", "next_attempt_at"),)


class Host(Base):
    """Delivery health per remote host: circuit breaker and availability."""

    __tablename__ = "hosts"
    domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    first_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # While set and in the future, deliveries to this host wait instead of hammering it.
    circuit_open_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unavailable: Mapped[bool] = mapped_column(Boolean, default=False)
    # NodeInfo `software.name` of the host (mastodon, lemmy, t3r1-fed …), for choosing what
    # form of redistribution it can display; refreshed after `software_checked_at`.
    software: Mapped[str | None] = mapped_column(String(64))
    software_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# The toolkit's tables register on the same metadata (alembic and tests see them all).
from t3r1_fed.db import models_api as _models_api  # noqa: E402,F401
from t3r1_fed.db import models_coops as _models_coops  # noqa: E402,F401
