"""Who gets which notification: synchronous queries run inside a flush (events.py).

Only Core statements on the flushing session's connection: no ORM object is loaded or
added while the unit of work is running.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Final

import orjson
from sqlalchemy import Table, or_, select
from sqlalchemy.orm import Session

from t3r1_fed.db.models import (
    Actor,
    Coop,
    CoopRole,
    Follow,
    Like,
    Mention,
    Object,
    Share,
    User,
    utcnow,
)
from t3r1_fed.db.models_api import Notification
from t3r1_fed.db.models_coops import CoopBan, PollVote

NOTIFICATIONS: Final[Table] = Notification.__table__  # type: ignore[assignment]

# Kinds of objects that are statuses a `status` notification may announce (top-level posts).
STATUS_KINDS: Final = frozenset({"post", "thread", "event", "poll"})
COPY_KIND: Final = "copy"  # coops/private.py: a group-authored rendering of another post
STAFF: Final = ("admin", "moderator")
# Objects published longer ago than this (fetched for context, backfilled …) do not notify
# `mention` and `status`: only what arrives as news does.
FRESH: Final = timedelta(days=2)


def is_fresh(published: datetime | None, now: datetime | None = None) -> bool:
    if published is None:
        return True
    return published >= (now or utcnow()) - FRESH


def poll_closed(raw: str | None) -> bool:
    """Does a Question's JSON say it is closed (`closed` set)?"""
    if not raw:
        return False
    try:
        doc: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return isinstance(doc, dict) and bool(doc.get("closed"))


def local_users(session: Session, actor_ids: Iterable[int]) -> set[int]:
    """Those of `actor_ids` that are local members with an account (not deleted)."""
    ids = sorted(set(actor_ids))
    if not ids:
        return set()
    rows = session.execute(
        select(User.actor_id)
        .join(Actor, Actor.id == User.actor_id)
        .where(User.actor_id.in_(ids), Actor.deleted_at.is_(None))
    )
    return set(rows.scalars())


def notifying_followers(session: Session, author_id: int) -> set[int]:
    """Local users following `author_id` with `notify` (Mastodon's bell)."""
    rows = session.execute(
        select(Follow.follower_id)
        .join(User, User.actor_id == Follow.follower_id)
        .where(
            Follow.followee_id == author_id,
            Follow.state == "accepted",
            Follow.notify.is_(True),
        )
    )
    return set(rows.scalars())


def staff_users(session: Session, group_id: int) -> set[int]:
    """Local admins and moderators (with an account) of the local cooperative `group_id`."""
    rows = session.execute(
        select(CoopRole.actor_id)
        .join(User, User.actor_id == CoopRole.actor_id)
        .where(CoopRole.coop_actor_id == group_id, CoopRole.role.in_(STAFF))
    )
    return set(rows.scalars())


def is_coop(session: Session, actor_id: int) -> bool:
    return session.execute(
        select(Coop.actor_id).where(Coop.actor_id == actor_id)
    ).first() is not None


def interacted(session: Session, object_id: int) -> set[int]:
    """Local users who boosted or favourited the object."""
    shares = select(Share.actor_id).where(Share.object_id == object_id)
    likes = select(Like.actor_id).where(Like.object_id == object_id)
    rows = session.execute(
        select(User.actor_id).where(
            or_(User.actor_id.in_(shares), User.actor_id.in_(likes))
        )
    )
    return set(rows.scalars())


def voters(session: Session, object_id: int) -> set[int]:
    rows = session.execute(
        select(PollVote.actor_id)
        .join(User, User.actor_id == PollVote.actor_id)
        .where(PollVote.poll_id == object_id)
    )
    return set(rows.scalars())


def already(session: Session, kind: str, object_id: int) -> set[int]:
    """Recipients already notified of `kind` about the object (poll: once only)."""
    rows = session.execute(
        select(Notification.recipient_id).where(
            Notification.type == kind, Notification.object_id == object_id
        )
    )
    return set(rows.scalars())


def may_see(
    session: Session, obj: Object, recipients: set[int], mentioned: set[int] | None = None
) -> set[int]:
    """Those of `recipients` who may see `obj`: a direct post only its author and the
    actors it mentions; content of a private local cooperative only its accepted,
    non-banned members (and its author). Followers-only posts are checked again when the
    list is read (api/statuses_view.py)."""
    allowed = set(recipients)
    if not allowed:
        return allowed
    if obj.visibility == "direct":
        if mentioned is None:
            mentioned = set(session.execute(
                select(Mention.actor_id).where(Mention.object_id == obj.id)
            ).scalars())
        allowed &= mentioned | {obj.author_id}
    if obj.group_id is not None and allowed - {obj.author_id}:
        private = session.execute(
            select(Coop.private).where(Coop.actor_id == obj.group_id)
        ).scalar()
        if private:
            members = set(session.execute(
                select(Follow.follower_id).where(
                    Follow.followee_id == obj.group_id,
                    Follow.state == "accepted",
                    Follow.follower_id.in_(sorted(allowed)),
                    Follow.follower_id.not_in(
                        select(CoopBan.actor_id).where(
                            CoopBan.coop_actor_id == obj.group_id,
                            or_(CoopBan.expires_at.is_(None), CoopBan.expires_at > utcnow()),
                        )
                    ),
                )
            ).scalars())
            allowed &= members | {obj.author_id}
    return allowed
