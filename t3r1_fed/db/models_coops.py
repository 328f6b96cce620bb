"""Tables of the cooperative toolkit: membership, media, resources, documents, events,
polls, directory and moderation. Generic content lives in `objects` (models.py); these
tables hold what is specific to each kind, keyed by the object's row id.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, MappedColumn, mapped_column

from t3r1_fed.db.models import Base, BigID, UTCDateTime, utcnow

ACTOR_FK = "actors.id"
OBJECT_FK = "objects.id"


def _object_pk() -> MappedColumn[int]:
    return mapped_column(ForeignKey(OBJECT_FK, ondelete="CASCADE"), primary_key=True)


def _actor_pk() -> MappedColumn[int]:
    return mapped_column(ForeignKey(ACTOR_FK, ondelete="CASCADE"), primary_key=True)


class Invite(Base):
    """An invitation into an invite-only cooperative (Invite{actor, object: group, target})."""

    __tablename__ = "invites"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    uri: Mapped[str] = mapped_column(String(2048), unique=True)
    coop_actor_id: Mapped[int] = mapped_column(ForeignKey(ACTOR_FK, ondelete="CASCADE"))
    inviter_id: Mapped[int] = mapped_column(ForeignKey(ACTOR_FK, ondelete="CASCADE"))
    invitee_id: Mapped[int] = mapped_column(ForeignKey(ACTOR_FK, ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending|accepted|rejected
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (UniqueConstraint("coop_actor_id", "invitee_id"),)


class CoopBan(Base):
    """A ban from a cooperative (Block{object: actor, target: group, endTime})."""

    __tablename__ = "coop_bans"
    coop_actor_id: Mapped[int] = mapped_column(
        ForeignKey(ACTOR_FK, ondelete="CASCADE"), primary_key=True
    )
    actor_id: Mapped[int] = mapped_column(
        ForeignKey(ACTOR_FK, ondelete="CASCADE"), primary_key=True
    )
    uri: Mapped[str | None] = mapped_column(String(2048))  # the Block activity
    reason: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Media(Base):
    """An uploaded (local) or referenced (remote) file. Local files are stored under an
    unguessable random key; the original filename is display text, never a path."""

    __tablename__ = "media"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey(ACTOR_FK, ondelete="CASCADE"), index=True)
    coop_actor_id: Mapped[int | None] = mapped_column(ForeignKey(ACTOR_FK, ondelete="CASCADE"))
    object_id: Mapped[int | None] = mapped_column(
        ForeignKey(OBJECT_FK, ondelete="SET NULL"), index=True
    )
    media_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(Integer, default=0)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    description: Mapped[str | None] = mapped_column(Text)  # alt text
    filename: Mapped[str | None] = mapped_column(String(255))  # display only
    thumbnail_key: Mapped[str | None] = mapped_column(String(64))
    blurhash: Mapped[str | None] = mapped_column(String(128))
    remote_url: Mapped[str | None] = mapped_column(String(2048))  # remote attachments
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ResourceFolder(Base):
    """A folder of a cooperative's resources (Mobilizon's ResourceCollection)."""

    __tablename__ = "resource_folders"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    uri: Mapped[str] = mapped_column(String(2048), unique=True)
    coop_actor_id: Mapped[int] = mapped_column(ForeignKey(ACTOR_FK, ondelete="CASCADE"), index=True)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("resource_folders.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Who made it (local folders): may rename and move it besides the moderators.
    creator_id: Mapped[int | None] = mapped_column(ForeignKey(ACTOR_FK, ondelete="SET NULL"))


class Resource(Base):
    """A file, template or photo of a cooperative (the object is a Document or Image)."""

    __tablename__ = "resources"
    object_id: Mapped[int] = mapped_column(
        ForeignKey(OBJECT_FK, ondelete="CASCADE"), primary_key=True
    )
    coop_actor_id: Mapped[int] = mapped_column(ForeignKey(ACTOR_FK, ondelete="CASCADE"), index=True)
    folder_id: Mapped[int | None] = mapped_column(
        ForeignKey("resource_folders.id", ondelete="SET NULL"), index=True
    )
    # leaflet | letter | statutes | poster | photo | other
    category: Mapped[str] = mapped_column(String(16), default="other")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DocumentVersion(Base):
    """One saved version of a collaborative (Markdown) document."""

    __tablename__ = "document_versions"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    object_id: Mapped[int] = mapped_column(ForeignKey(OBJECT_FK, ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    markdown: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int] = mapped_column(ForeignKey(ACTOR_FK, ondelete="CASCADE"))
    summary: Mapped[str | None] = mapped_column(Text)  # edit note
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (UniqueConstraint("object_id", "version"),)


class Event(Base):
    """A meeting (FEP-8a8e Event)."""

    __tablename__ = "events"
    object_id: Mapped[int] = mapped_column(
        ForeignKey(OBJECT_FK, ondelete="CASCADE"), primary_key=True
    )
    start_time: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    end_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    timezone: Mapped[str | None] = mapped_column(String(64))  # IANA name
    location_name: Mapped[str | None] = mapped_column(String(512))
    location_address: Mapped[str | None] = mapped_column(Text)
    online_url: Mapped[str | None] = mapped_column(String(2048))
    capacity: Mapped[int | None] = mapped_column(Integer)


class EventRsvp(Base):
    """A participation (Join … answered Accept; Leave removes it)."""

    __tablename__ = "event_rsvps"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey(OBJECT_FK, ondelete="CASCADE"), index=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey(ACTOR_FK, ondelete="CASCADE"))
    uri: Mapped[str | None] = mapped_column(String(2048), unique=True)  # the Join activity
    state: Mapped[str] = mapped_column(String(16), default="accepted")  # pending|accepted
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (UniqueConstraint("event_id", "actor_id"),)


class Poll(Base):
    """A consultation (Question, FEP-9967)."""

    __tablename__ = "polls"
    object_id: Mapped[int] = mapped_column(
        ForeignKey(OBJECT_FK, ondelete="CASCADE"), primary_key=True
    )
    multiple: Mapped[bool] = mapped_column(Boolean, default=False)  # anyOf vs oneOf
    closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    voters_count: Mapped[int] = mapped_column(Integer, default=0)
    # Local polls: when the final Update{Question} was claimed (set once, by one worker).
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Counts changed since the last Update{Question}, which was sent at `results_sent_at`.
    results_dirty: Mapped[bool] = mapped_column(Boolean, default=False)
    results_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PollOption(Base):
    __tablename__ = "poll_options"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey(OBJECT_FK, ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(512))
    votes: Mapped[int] = mapped_column(Integer, default=0)
    __table_args__ = (UniqueConstraint("poll_id", "position"),)


class PollVote(Base):
    __tablename__ = "poll_votes"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey(OBJECT_FK, ondelete="CASCADE"))
    actor_id: Mapped[int] = mapped_column(ForeignKey(ACTOR_FK, ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    uri: Mapped[str | None] = mapped_column(String(2048), unique=True)  # the vote Note
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (UniqueConstraint("poll_id", "actor_id", "position"),)


class Profile(Base):
    """Directory (annuaire) fields of a local member; each one shown only if opted in."""

    __tablename__ = "profiles"
    actor_id: Mapped[int] = mapped_column(
        ForeignKey(ACTOR_FK, ondelete="CASCADE"), primary_key=True
    )
    structure: Mapped[str | None] = mapped_column(String(255))
    mandate: Mapped[str | None] = mapped_column(String(255))
    skills: Mapped[str | None] = mapped_column(Text)  # comma-separated, normalised
    contact: Mapped[str | None] = mapped_column(Text)
    show_structure: Mapped[bool] = mapped_column(Boolean, default=False)
    show_mandate: Mapped[bool] = mapped_column(Boolean, default=False)
    show_skills: Mapped[bool] = mapped_column(Boolean, default=False)
    show_contact: Mapped[bool] = mapped_column(Boolean, default=False)
    listed: Mapped[bool] = mapped_column(Boolean, default=False)  # appears in the directory
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ObjectTag(Base):
    """Hashtags of an object (lowercased, without '#')."""

    __tablename__ = "object_tags"
    object_id: Mapped[int] = mapped_column(
        ForeignKey(OBJECT_FK, ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(255), primary_key=True)
    __table_args__ = (Index("ix_object_tags_tag", "tag"),)


class Flag(Base):
    """A report (Flag) about actors or objects, received or made locally."""

    __tablename__ = "flags"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    uri: Mapped[str] = mapped_column(String(2048), unique=True)
    reporter_id: Mapped[int] = mapped_column(ForeignKey(ACTOR_FK, ondelete="CASCADE"))
    coop_actor_id: Mapped[int | None] = mapped_column(
        ForeignKey(ACTOR_FK, ondelete="CASCADE"), index=True
    )
    target_actor_id: Mapped[int | None] = mapped_column(ForeignKey(ACTOR_FK, ondelete="CASCADE"))
    object_uris: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    comment: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="open")  # open | resolved
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ContextBackfill(Base):
    """A remote thread's FEP-7888 `context` collection to fetch (FEP-f228 backfill,
    inbox/backfill.py): requested when a reply arrives whose thread root is unknown, fetched
    by the worker at most once per `BACKFILL_INTERVAL` per context."""

    __tablename__ = "context_backfills"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    context: Mapped[str] = mapped_column(String(2048), unique=True)
    # The (remote) cooperative the thread belongs to: backfilled posts are filed there.
    group_id: Mapped[int | None] = mapped_column(ForeignKey(ACTOR_FK, ondelete="SET NULL"))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)  # None: nothing due
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a worker's lease
    fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # last fetch started
    stored_items: Mapped[int] = mapped_column(Integer, default=0)  # new posts, last fetch
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
