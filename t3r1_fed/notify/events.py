"""The one place mentions and notifications are derived: an `after_flush` listener.

Every Object, Share, Like and Follow row reaches the database through a flush of an ORM
session, whatever the path (local posting, the inbox, the CLI, the API). The listener
looks at what the flush wrote and adds the `mentions` and `notifications` rows in the same
transaction, with Core statements on the same connection (so they commit or roll back
with the rows they describe, savepoints included).

Installed by `install()` (called from `Context.create`): the app's sessions use
`NotifyingSession` as their synchronous session class. Under asyncio the flush runs inside
SQLAlchemy's greenlet, so the synchronous `session.execute()` calls here work on
aiosqlite and asyncpg alike.

What notifies (Mastodon's types):
- mention: an object newly mentions a local user (also when an edit adds the mention);
- status: a new top-level post by an actor a local user follows with `notify`;
- reblog / favourite: a new Share / Like of a local user's object;
- follow / follow_request: a new accepted / pending Follow of a local user; a new pending
  Follow of a local cooperative → follow_request to each local admin and moderator, with
  `group_id` set;
- poll: a Question became closed (its JSON got `closed`) → local voters and local author;
- update: an object's `updated` changed (an edit, not a poll's new counts) → local users
  who boosted or favourited it.
Nobody is notified of their own action, nor about content they may not see
(rules.may_see); group-authored copies of private cooperatives (kind `copy`) notify
nobody (the original did).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import event, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from t3r1_fed.db.models import Follow, Like, Object, Share, utcnow
from t3r1_fed.notify import rules
from t3r1_fed.notify.mentions import mention_hrefs, sync_mentions


class NotifyingSession(Session):
    """The synchronous session class behind the app's AsyncSessions (see `install`)."""


def install(sessions: async_sessionmaker[AsyncSession]) -> async_sessionmaker[AsyncSession]:
    """Make `sessions` derive mentions and notifications on every flush."""
    sessions.configure(sync_session_class=NotifyingSession)
    return sessions


@dataclass
class _Pending:
    """What one flush wrote that matters here."""

    new_objects: list[Object] = field(default_factory=list)
    edited: list[Object] = field(default_factory=list)  # raw changed (mentions, polls)
    updated: list[Object] = field(default_factory=list)  # `updated` moved (edits)
    closed_polls: list[Object] = field(default_factory=list)
    shares: list[Share] = field(default_factory=list)
    likes: list[Like] = field(default_factory=list)
    follows: list[Follow] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.new_objects or self.edited or self.updated or self.closed_polls
                    or self.shares or self.likes or self.follows)

    def notify(
        self, recipients: set[int], kind: str, from_actor: int, *,
        object_id: int | None = None, group_id: int | None = None,
    ) -> None:
        now = utcnow()
        for rid in sorted(recipients - {from_actor}):
            self.rows.append({
                "recipient_id": rid, "type": kind, "from_actor_id": from_actor,
                "object_id": object_id, "group_id": group_id, "created_at": now,
            })


def _keep_old_value(_target: Object, _value: Any, _old: Any, _initiator: Any) -> None:
    """No-op: registered for its `active_history`."""


# Compared before/after in a flush: make SQLAlchemy load the previous value when an expired
# attribute is set (after a savepoint rollback, say), so "changed" is never a guess.
for _attr in (Object.raw, Object.updated, Object.content, Object.summary, Object.name):
    event.listen(_attr, "set", _keep_old_value, active_history=True)


def _old_new(obj: Object, attr: str) -> tuple[bool, Any, Any]:
    """(changed, old, new) of a persistent object's attribute during a flush."""
    hist = inspect(obj).attrs[attr].history
    if not hist.added:
        return False, None, None
    new = hist.added[0]
    old = hist.deleted[0] if hist.deleted else None
    return old != new, old, new


def _text_changed(obj: Object) -> bool:
    return any(_old_new(obj, a)[0] for a in ("content", "summary", "name"))


def _collect(session: Session) -> _Pending:
    p = _Pending()
    for o in session.new:
        if isinstance(o, Object):
            p.new_objects.append(o)
        elif isinstance(o, Share):
            p.shares.append(o)
        elif isinstance(o, Like):
            p.likes.append(o)
        elif isinstance(o, Follow):
            p.follows.append(o)
    for o in session.dirty:
        if not isinstance(o, Object):
            continue
        raw_changed, old_raw, new_raw = _old_new(o, "raw")
        if raw_changed:
            p.edited.append(o)
            if o.kind == "poll" and rules.poll_closed(new_raw) and not rules.poll_closed(old_raw):
                p.closed_polls.append(o)
        upd_changed, _, new_updated = _old_new(o, "updated")
        if upd_changed and isinstance(new_updated, datetime) and o.deleted_at is None:
            if o.kind != "poll" or _text_changed(o):
                p.updated.append(o)
    return p


@event.listens_for(NotifyingSession, "after_flush")
def _after_flush(session: Session, _flush_context: Any) -> None:
    p = _collect(session)
    if p.empty():
        return
    _mentions_and_statuses(session, p)
    _interactions(session, p)
    _follows(session, p)
    _polls_and_updates(session, p)
    if p.rows:
        session.execute(rules.NOTIFICATIONS.insert(), p.rows)


def _mentions_and_statuses(session: Session, p: _Pending) -> None:
    objs = {o.id: o for o in [*p.new_objects, *p.edited]}
    if not objs:
        return
    new_ids = {o.id for o in p.new_objects}
    hrefs = {oid: mention_hrefs(o.raw) for oid, o in objs.items()}
    added = sync_mentions(session, hrefs, set(objs) - new_ids)
    now = utcnow()
    for oid, obj in objs.items():
        if obj.kind == rules.COPY_KIND or obj.deleted_at is not None:
            continue
        fresh = rules.is_fresh(obj.published, now)
        mentioned = added.get(oid, set())
        if mentioned and fresh:
            to = rules.may_see(session, obj, rules.local_users(session, mentioned), mentioned)
            p.notify(to, "mention", obj.author_id, object_id=oid)
        if oid not in new_ids or not fresh:
            continue
        if obj.in_reply_to is None and obj.kind in rules.STATUS_KINDS \
                and obj.visibility != "direct":
            followers = rules.notifying_followers(session, obj.author_id) - mentioned
            p.notify(rules.may_see(session, obj, followers), "status", obj.author_id,
                     object_id=oid)


def _author_of(session: Session, object_id: int) -> int | None:
    """The author of a live object that is not a group copy (a Core query: no ORM load
    during the flush)."""
    row = session.execute(
        select(Object.author_id).where(
            Object.id == object_id, Object.deleted_at.is_(None),
            Object.kind != rules.COPY_KIND,
        )
    ).first()
    return None if row is None else int(row[0])


def _interactions(session: Session, p: _Pending) -> None:
    for kind, rows in (("reblog", p.shares), ("favourite", p.likes)):
        for row in rows:
            author = _author_of(session, row.object_id)
            if author is None or author == row.actor_id:
                continue
            to = rules.local_users(session, {author})
            p.notify(to, kind, row.actor_id, object_id=row.object_id)


def _follows(session: Session, p: _Pending) -> None:
    for f in p.follows:
        if f.follower_id == f.followee_id:
            continue
        if rules.local_users(session, {f.followee_id}):
            if f.state in ("accepted", "pending"):
                kind = "follow" if f.state == "accepted" else "follow_request"
                p.notify({f.followee_id}, kind, f.follower_id)
        elif f.state == "pending" and rules.is_coop(session, f.followee_id):
            p.notify(rules.staff_users(session, f.followee_id), "follow_request",
                     f.follower_id, group_id=f.followee_id)


def _polls_and_updates(session: Session, p: _Pending) -> None:
    for obj in p.closed_polls:
        if obj.deleted_at is not None:
            continue
        to = rules.voters(session, obj.id) | rules.local_users(session, {obj.author_id})
        to = rules.may_see(session, obj, to) - rules.already(session, "poll", obj.id)
        # The author is told too (Mastodon: "a poll you created has ended").
        now = utcnow()
        for rid in sorted(to):
            p.rows.append({
                "recipient_id": rid, "type": "poll", "from_actor_id": obj.author_id,
                "object_id": obj.id, "group_id": None, "created_at": now,
            })
    for obj in p.updated:
        if obj.kind == rules.COPY_KIND:
            continue
        to = rules.may_see(session, obj, rules.interacted(session, obj.id))
        p.notify(to, "update", obj.author_id, object_id=obj.id)
