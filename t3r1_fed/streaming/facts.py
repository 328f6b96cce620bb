"""Routing facts: a stream event resolved once per process, so that each connection only
tests set membership before rendering for its viewer.

The rules mirror the timelines (api/timelines.py):
- home (`user`): a post by the member or an account they follow (not a reply, a status
  kind, direct only to its author); a boost — a cooperative's redistribution included — by
  the member or an account they follow with boosts shown;
- public timelines and hashtags: public top-level posts of a status kind, never boosts.
Rendering (api/statuses_view.render) then drops what the viewer may not see.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.api.statuses_view import STATUS_KINDS, StatusRef
from t3r1_fed.db import ids
from t3r1_fed.db.models import Actor, Follow, Object, Share
from t3r1_fed.db.models_api import Notification
from t3r1_fed.db.models_coops import Media, ObjectTag
from t3r1_fed.streaming import events as ev

UPDATE: Final = "update"
STATUS_UPDATE: Final = "status.update"
DELETE: Final = "delete"
NOTIFICATION: Final = "notification"


@dataclass(frozen=True)
class Fact:
    event: str  # update | status.update | delete | notification
    id: int  # the status id (sid), or the notification id
    ref: StatusRef | None = None  # the status to render (update, status.update)
    object_id: int | None = None
    home: frozenset[int] = frozenset()  # actors whose home feed takes it
    via: frozenset[int] = frozenset()  # the author or booster that puts it there (lists)
    public: bool = False  # public timelines take it
    local: bool = False
    tags: frozenset[str] = frozenset()
    media: bool = False  # has attachments (the `public:media` streams, `only_media`)
    recipient_id: int | None = None  # notifications
    # deletions: boosts of the deleted post, each with the home feeds that had it
    boosts: tuple[tuple[int, frozenset[int]], ...] = field(default=())


def _home_post(obj: Object) -> bool:
    return obj.in_reply_to is None and obj.kind in STATUS_KINDS


def _public(obj: Object) -> bool:
    return obj.visibility == "public" and _home_post(obj)


async def _local_followers(
    session: AsyncSession, actor_ids: Iterable[int], *, boosts: bool = False
) -> set[int]:
    wanted = list(set(actor_ids))
    if not wanted:
        return set()
    q = (
        select(Follow.follower_id)
        .join(Actor, Actor.id == Follow.follower_id)
        .where(Follow.followee_id.in_(wanted), Follow.state == "accepted",
               Actor.local.is_(True))
    )
    if boosts:
        q = q.where(Follow.show_reblogs.is_(True))
    return set((await session.execute(q)).scalars())


async def _post_home(session: AsyncSession, obj: Object) -> frozenset[int]:
    if not _home_post(obj):
        return frozenset()
    if obj.visibility == "direct":
        return frozenset({obj.author_id})
    return frozenset({obj.author_id} | await _local_followers(session, [obj.author_id]))


async def _boost_home(session: AsyncSession, sharer_id: int) -> frozenset[int]:
    return frozenset({sharer_id} | await _local_followers(session, [sharer_id], boosts=True))


async def _tags(session: AsyncSession, obj: Object) -> frozenset[str]:
    rows = await session.execute(select(ObjectTag.tag).where(ObjectTag.object_id == obj.id))
    return frozenset(t.lower() for t in rows.scalars())


async def _has_media(session: AsyncSession, obj: Object) -> bool:
    return bool((await session.execute(
        select(exists().where(Media.object_id == obj.id))
    )).scalar())


async def _status(session: AsyncSession, sid: int) -> Fact | None:
    share: Share | None = None
    if ids.kind_of(sid) == ids.SHARE:
        share = (await session.execute(select(Share).where(Share.sid == sid))).scalar()
        if share is None:
            return None
        obj = (await session.execute(
            select(Object).where(Object.id == share.object_id)
        )).scalar()
    else:
        obj = (await session.execute(select(Object).where(Object.sid == sid))).scalar()
    if obj is None or obj.deleted_at is not None or obj.removed_at is not None:
        return None
    if share is not None:
        return Fact(UPDATE, sid, StatusRef(sid, obj.id, share.id), obj.id,
                    home=await _boost_home(session, share.actor_id),
                    via=frozenset({share.actor_id}))
    public = _public(obj)
    return Fact(UPDATE, sid, StatusRef(sid, obj.id), obj.id,
                home=await _post_home(session, obj), via=frozenset({obj.author_id}),
                public=public, local=obj.local,
                tags=await _tags(session, obj) if public else frozenset(),
                media=public and await _has_media(session, obj))


async def _changed(session: AsyncSession, kind: str, sid: int) -> Fact | None:
    """An edit or a deletion: to the feeds that took the post or one of its boosts."""
    obj = (await session.execute(select(Object).where(Object.sid == sid))).scalar()
    if obj is None:
        return None
    if kind == ev.EDIT and (obj.deleted_at is not None or obj.removed_at is not None):
        return None
    shares = (await session.execute(
        select(Share.sid, Share.actor_id).where(Share.object_id == obj.id)
    )).all()
    post_home = await _post_home(session, obj)
    boosts = tuple([(bsid, await _boost_home(session, actor)) for bsid, actor in shares])
    home = frozenset(post_home.union(*(h for _, h in boosts)))
    via = frozenset({obj.author_id, *(actor for _, actor in shares)})
    public = _public(obj)
    tags = await _tags(session, obj) if public else frozenset()
    media = public and await _has_media(session, obj)
    if kind == ev.DELETE:
        return Fact(DELETE, sid, None, obj.id, home=post_home, via=via, public=public,
                    local=obj.local, tags=tags, media=media, boosts=boosts)
    return Fact(STATUS_UPDATE, sid, StatusRef(sid, obj.id), obj.id, home=home, via=via,
                public=public, local=obj.local, tags=tags, media=media)


async def _notification(session: AsyncSession, nid: int) -> Fact | None:
    recipient = (await session.execute(
        select(Notification.recipient_id).where(Notification.id == nid)
    )).scalar()
    return None if recipient is None else Fact(NOTIFICATION, nid, recipient_id=recipient)


async def resolve(session: AsyncSession, events: Sequence[ev.StreamEvent]) -> list[Fact]:
    out: list[Fact] = []
    seen: set[ev.StreamEvent] = set()
    for e in events:
        if e in seen:
            continue
        seen.add(e)
        if e.kind == ev.STATUS:
            fact = await _status(session, e.id)
        elif e.kind == ev.NOTIFICATION:
            fact = await _notification(session, e.id)
        elif e.kind == ev.UNBOOST:
            fact = Fact(DELETE, e.id, home=await _boost_home(session, e.actor),
                        via=frozenset({e.actor}))
        else:
            fact = await _changed(session, e.kind, e.id)
        if fact is not None:
            out.append(fact)
    return out
