"""Statuses as the Mastodon client API shows them: who may see what, and the Status entity.

A status is an object (`objects.sid`) or a boost of one (`shares.sid`): a cooperative's
redistribution is a Status by the group whose `reblog` is the original post. Rendering is
batched — one query per kind of data for a whole page, whatever its length — because the
home timeline must answer in milliseconds (bench/timeline.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from t3r1_fed.api import entities
from t3r1_fed.api.filter_match import (
    CompiledFilter,
    active_filters,
    filter_results,
    searchable_text,
)
from t3r1_fed.context import Context
from t3r1_fed.db import ids
from t3r1_fed.db.models import Actor, Follow, Like, Mention, Object, Share, User
from t3r1_fed.db.models_coops import Media, ObjectTag, Poll, PollOption, PollVote

# Kinds of objects that are statuses (FAQ entries, documents and files have their own views).
STATUS_KINDS = ("post", "thread", "reply", "event", "poll")


@dataclass(frozen=True)
class StatusRef:
    sid: int  # the id clients see: the object's, or the boost's
    object_id: int  # the post (the original, for a boost)
    share_id: int | None = None  # set when this status is a boost


def ref_of_object(obj: Object) -> StatusRef:
    return StatusRef(obj.sid, obj.id)


async def ref_for_sid(session: AsyncSession, sid: int) -> StatusRef | None:
    """The object or the boost with this status id (the low bit tells which)."""
    if ids.kind_of(sid) == ids.SHARE:
        row = (await session.execute(
            select(Share.id, Share.object_id).where(Share.sid == sid)
        )).first()
        return None if row is None else StatusRef(sid, row[1], row[0])
    oid = (await session.execute(select(Object.id).where(Object.sid == sid))).scalar()
    return None if oid is None else StatusRef(sid, oid)


def parse_sid(raw: str) -> int | None:
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if 0 < value < (1 << 63) else None


# -- visibility ------------------------------------------------------------------------


@dataclass
class Audience:
    """What one viewer may see: whom they follow (members of cooperatives follow them) and
    which of the objects at hand mention them."""

    viewer_id: int | None
    following: frozenset[int]
    mentioned: frozenset[int]

    def sees(self, obj: Object) -> bool:
        if obj.deleted_at is not None or obj.removed_at is not None:
            return False
        if self.viewer_id is not None and obj.author_id == self.viewer_id:
            return True
        if obj.id in self.mentioned:
            return True
        if obj.visibility in ("public", "unlisted"):
            return True
        if obj.visibility == "private":
            # Followers-only: followers of the author, or members of the cooperative.
            return obj.author_id in self.following or (
                obj.group_id is not None and obj.group_id in self.following
            )
        return False  # direct, not addressed to the viewer


async def following_ids(session: AsyncSession, viewer_id: int) -> frozenset[int]:
    rows = await session.execute(
        select(Follow.followee_id)
        .where(Follow.follower_id == viewer_id, Follow.state == "accepted")
    )
    return frozenset(rows.scalars())


async def audience(
    session: AsyncSession, viewer: Actor | None, objs: Iterable[Object],
    *, following: frozenset[int] | None = None,
) -> Audience:
    if viewer is None:
        return Audience(None, frozenset(), frozenset())
    restricted = [o.id for o in objs if o.visibility not in ("public", "unlisted")]
    mentioned: frozenset[int] = frozenset()
    if restricted:
        mentioned = frozenset((await session.execute(
            select(Mention.object_id)
            .where(Mention.actor_id == viewer.id, Mention.object_id.in_(restricted))
        )).scalars())
    if following is None:
        following = await following_ids(session, viewer.id)
    return Audience(viewer.id, following, mentioned)


async def can_see(session: AsyncSession, viewer: Actor | None, obj: Object) -> bool:
    return (await audience(session, viewer, [obj])).sees(obj)


# -- rendering -------------------------------------------------------------------------


def _iso(dt: datetime) -> str:
    return entities.iso(dt)


# Mastodon's MediaAttachment: one builder, shared with the media API (api/media.py).
attachment = entities.media_attachment


def _content(obj: Object) -> str:
    body = obj.content or ""
    if obj.type in ("Article", "Page", "Event", "Question") and obj.name and obj.type != "Question":
        from html import escape

        title = f"<p><strong>{escape(obj.name)}</strong></p>"
        return title + body
    return body


@dataclass
class _Batch:
    """Everything a page of statuses needs, loaded with one query per kind."""

    objects: dict[int, Object]
    shares: dict[int, Share]
    accounts: dict[int, dict[str, Any]]
    parents: dict[str, tuple[int, int]]  # in_reply_to uri → (sid, author id)
    media: dict[int, list[Media]]
    mentions: dict[int, list[Actor]]
    tags: dict[int, list[str]]
    replies: dict[str, int]
    reblogs: dict[int, int]
    favourites: dict[int, int]
    my_likes: set[int]
    my_shares: set[int]
    polls: dict[int, tuple[Poll, list[PollOption], list[int]]]


async def _load(
    ctx: Context, session: AsyncSession, viewer: Actor | None, refs: Sequence[StatusRef],
    following: frozenset[int] | None,
) -> tuple[_Batch, Audience]:
    oids = list({r.object_id for r in refs})
    share_ids = [r.share_id for r in refs if r.share_id is not None]
    objects = {o.id: o for o in (await session.execute(
        select(Object).where(Object.id.in_(oids))
    )).scalars()} if oids else {}
    shares = {s.id: s for s in (await session.execute(
        select(Share).where(Share.id.in_(share_ids))
    )).scalars()} if share_ids else {}
    aud = await audience(session, viewer, objects.values(), following=following)
    seen = [o for o in objects.values() if aud.sees(o)]
    seen_ids = [o.id for o in seen]
    actor_ids = {o.author_id for o in seen} | {s.actor_id for s in shares.values()}

    parent_uris = list({o.in_reply_to for o in seen if o.in_reply_to})
    parents: dict[str, tuple[int, int]] = {}
    if parent_uris:
        for uri, sid, author in (await session.execute(
            select(Object.uri, Object.sid, Object.author_id).where(Object.uri.in_(parent_uris))
        )):
            parents[uri] = (sid, author)

    media: dict[int, list[Media]] = {}
    mentions: dict[int, list[Actor]] = {}
    tags: dict[int, list[str]] = {}
    polls: dict[int, tuple[Poll, list[PollOption], list[int]]] = {}
    if seen_ids:
        for m in (await session.execute(
            select(Media).where(Media.object_id.in_(seen_ids)).order_by(Media.id)
        )).scalars():
            assert m.object_id is not None
            media.setdefault(m.object_id, []).append(m)
        for oid, actor in (await session.execute(
            select(Mention.object_id, Actor).join(Actor, Actor.id == Mention.actor_id)
            .where(Mention.object_id.in_(seen_ids))
        )):
            mentions.setdefault(oid, []).append(actor)
        for oid, tag in (await session.execute(
            select(ObjectTag.object_id, ObjectTag.tag).where(ObjectTag.object_id.in_(seen_ids))
        )):
            tags.setdefault(oid, []).append(tag)
        poll_ids = [o.id for o in seen if o.type == "Question"]
        if poll_ids:
            for poll in (await session.execute(
                select(Poll).where(Poll.object_id.in_(poll_ids))
            )).scalars():
                polls[poll.object_id] = (poll, [], [])
            for opt in (await session.execute(
                select(PollOption).where(PollOption.poll_id.in_(list(polls)))
                .order_by(PollOption.position)
            )).scalars():
                polls[opt.poll_id][1].append(opt)
            if viewer is not None and polls:
                for pid, pos in (await session.execute(
                    select(PollVote.poll_id, PollVote.position)
                    .where(PollVote.poll_id.in_(list(polls)), PollVote.actor_id == viewer.id)
                )):
                    polls[pid][2].append(pos)

    replies: dict[str, int] = {}
    reblogs: dict[int, int] = {}
    favourites: dict[int, int] = {}
    my_likes: set[int] = set()
    my_shares: set[int] = set()
    if seen_ids:
        # Every counter and the viewer's own flags in one query (correlated subqueries on
        # the object_id / in_reply_to indexes).
        reply = aliased(Object)
        viewer_id = viewer.id if viewer is not None else -1
        cols = (
            Object.id, Object.uri,
            select(func.count()).where(reply.in_reply_to == Object.uri,
                                       reply.deleted_at.is_(None)).scalar_subquery(),
            select(func.count()).where(Share.object_id == Object.id).scalar_subquery(),
            select(func.count()).where(Like.object_id == Object.id).scalar_subquery(),
            exists().where(Like.object_id == Object.id, Like.actor_id == viewer_id),
            exists().where(Share.object_id == Object.id, Share.actor_id == viewer_id),
        )
        for oid, uri, n_rep, n_reb, n_fav, liked, shared in await session.execute(
            select(*cols).where(Object.id.in_(seen_ids))
        ):
            replies[uri], reblogs[oid], favourites[oid] = n_rep, n_reb, n_fav
            if liked:
                my_likes.add(oid)
            if shared:
                my_shares.add(oid)

    actors = list((await session.execute(
        select(Actor).where(Actor.id.in_(list(actor_ids)))
    )).scalars()) if actor_ids else []
    accounts = await entities.accounts(session, ctx.settings, actors, cached=True)
    return _Batch(objects, shares, accounts, parents, media, mentions, tags, replies,
                  reblogs, favourites, my_likes, my_shares, polls), aud


def _mention(actor: Actor) -> dict[str, Any]:
    return {
        "id": str(actor.id),
        "username": actor.username,
        "url": actor.url or actor.uri,
        "acct": actor.username if actor.local else f"{actor.username}@{actor.domain}",
    }


def _poll(poll: Poll, options: list[PollOption], own: list[int],
          viewer: Actor | None) -> dict[str, Any]:
    now = datetime.now(UTC)
    expired = poll.closed_at is not None or (poll.closes_at is not None and poll.closes_at <= now)
    votes = sum(o.votes for o in options)
    return {
        "id": str(poll.object_id),
        "expires_at": _iso(poll.closes_at) if poll.closes_at else None,
        "expired": expired,
        "multiple": poll.multiple,
        "votes_count": votes,
        "voters_count": poll.voters_count if poll.multiple else votes,
        "options": [{"title": o.name, "votes_count": o.votes} for o in options],
        "emojis": [],
        **({"voted": bool(own), "own_votes": sorted(own)} if viewer is not None else {}),
    }


def _status(ctx: Context, b: _Batch, obj: Object, viewer: Actor | None) -> dict[str, Any]:
    parent = b.parents.get(obj.in_reply_to) if obj.in_reply_to else None
    poll = b.polls.get(obj.id)
    tag_base = f"{ctx.settings.base_url}/tags/"
    return {
        "id": str(obj.sid),
        "uri": obj.uri,
        "url": obj.url or obj.uri,
        "created_at": _iso(obj.published),
        "edited_at": _iso(obj.updated) if obj.updated else None,
        "account": b.accounts[obj.author_id],
        "in_reply_to_id": str(parent[0]) if parent else None,
        "in_reply_to_account_id": str(parent[1]) if parent else None,
        "reblog": None,
        "content": _content(obj),
        "text": None,
        "visibility": obj.visibility,
        "sensitive": obj.sensitive,
        "spoiler_text": (obj.summary or "") if obj.type == "Note" else "",
        "media_attachments": [attachment(ctx, m) for m in b.media.get(obj.id, [])],
        "mentions": [_mention(a) for a in b.mentions.get(obj.id, [])],
        "tags": [{"name": t, "url": tag_base + t} for t in b.tags.get(obj.id, [])],
        "emojis": [] if obj.local else entities.custom_emojis(obj.raw),
        "card": None,
        "poll": _poll(poll[0], poll[1], poll[2], viewer) if poll else None,
        "application": None,
        "language": obj.language,
        "replies_count": b.replies.get(obj.uri, 0),
        "reblogs_count": b.reblogs.get(obj.id, 0),
        "favourites_count": b.favourites.get(obj.id, 0),
        **({
            "favourited": obj.id in b.my_likes,
            "reblogged": obj.id in b.my_shares,
            "muted": False,
            "bookmarked": False,
            "pinned": False,
            "filtered": [],
        } if viewer is not None else {}),
    }


def _boost(b: _Batch, share: Share, original: dict[str, Any],
           viewer: Actor | None) -> dict[str, Any]:
    return {
        **original,
        "id": str(share.sid),
        "uri": share.uri,
        "url": None,
        "created_at": _iso(share.published),
        "edited_at": None,
        "account": b.accounts[share.actor_id],
        "in_reply_to_id": None,
        "in_reply_to_account_id": None,
        "reblog": original,
        "content": "",
        "spoiler_text": "",
        "sensitive": False,
        "media_attachments": [],
        "mentions": [],
        "tags": [],
        "poll": None,
        "card": None,
        "language": None,
        "replies_count": 0,
        "reblogs_count": 0,
        "favourites_count": 0,
    }


async def _filters(session: AsyncSession, viewer: Actor | None,
                   context: str | None) -> list[CompiledFilter]:
    if viewer is None or context is None or not viewer.local:
        return []
    uid = (await session.execute(select(User.id).where(User.actor_id == viewer.id))).scalar()
    return [] if uid is None else await active_filters(session, uid, context)


def _filtered(b: _Batch, obj: Object, doc: dict[str, Any],
              filters: list[CompiledFilter]) -> list[dict[str, Any]]:
    """FilterResults of the viewer's keyword filters (not on their own statuses, as
    Mastodon); `hide` ones are returned too, for the app to drop the status."""
    poll = b.polls.get(obj.id)
    text = searchable_text(doc["spoiler_text"], obj.content,
                           [o.name for o in poll[1]] if poll else (),
                           [m.description for m in b.media.get(obj.id, [])])
    return filter_results(filters, text)


async def render(
    ctx: Context, session: AsyncSession, viewer: Actor | None, refs: Sequence[StatusRef],
    *, following: frozenset[int] | None = None, filter_context: str | None = None,
) -> list[dict[str, Any]]:
    """Status entities for `refs`, in order; those `viewer` may not see are left out.
    With `filter_context` (home, public, thread, account, notifications), the viewer's
    keyword filters of that context fill `filtered`."""
    if not refs:
        return []
    b, aud = await _load(ctx, session, viewer, refs, following)
    filters = await _filters(session, viewer, filter_context)
    out: list[dict[str, Any]] = []
    cache: dict[int, dict[str, Any]] = {}
    for ref in refs:
        obj = b.objects.get(ref.object_id)
        if obj is None or not aud.sees(obj):
            continue
        doc = cache.get(obj.id)
        if doc is None:
            doc = cache[obj.id] = _status(ctx, b, obj, viewer)
            if filters and viewer is not None and obj.author_id != viewer.id:
                doc["filtered"] = _filtered(b, obj, doc, filters)
        if ref.share_id is not None:
            share = b.shares.get(ref.share_id)
            if share is None:
                continue
            out.append(_boost(b, share, doc, viewer))
        else:
            out.append(doc)
    return out


def visible_filter(viewer_id: int | None) -> Any:
    """A SQL condition approximating `Audience.sees` for listing queries (public and
    unlisted statuses, plus the viewer's own); exact checks happen at rendering."""
    conds: list[Any] = [Object.visibility.in_(("public", "unlisted"))]
    if viewer_id is not None:
        conds.append(Object.author_id == viewer_id)
    return or_(*conds)
