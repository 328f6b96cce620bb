"""Redistribution in a private cooperative (GROUPS.md "Private cooperatives").

Everything is addressed to `[group followers]`, never Public, and delivered to the inboxes
of accepted, non-banned members only. Mastodon cannot display a boost of a non-public post,
so the form depends on the software of each member's host (NodeInfo `software.name`,
cached in `hosts`, federation/software.py):

- FEP-1b12 servers (Lemmy, Mbin, PieFed, Friendica, NodeBB, Discourse, Hubzilla, other
  t3r1 instances …) get `Announce(<activity as received>)`, as for public cooperatives, and
  fetch the object from its origin with their instance actor (allowed: they have a member);
- every other server (Mastodon, GoToSocial, Pleroma, Akkoma, Misskey …) gets a copy authored
  by the group: `Create{Note attributedTo: group}`, its content opened by
  "Par <a href=author>@author@host</a> :", `url` the original, `inReplyTo` the group's copy
  of the parent when there is one. The copy has its own id, served (access-controlled) at
  /o/…, and is updated (`Update{Note}`) and deleted (`Delete{Tombstone}`) with the original;
- a host whose NodeInfo cannot be read gets both forms (a 1b12 server ignores a Note
  attributed to a Group, Mastodon ignores an `Announce` of an activity): nobody misses the
  post; it is asked again after an hour.

Mastodon members answer the copy: a reply whose `inReplyTo` is one of our copies is stored
as a reply to the original (ingest hook below), so it joins the original's thread. The copy
of a poll is a `Question` carrying the poll's options and counts: votes on it count on the
poll (inbox/polls.py) and each new count updates the copy. Deletions and thread removals
reach the copies (coops/private_moderation.py).
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.coops.kinds import on_ingest
from t3r1_fed.db.models import Actor, Coop, Object, Share, utcnow
from t3r1_fed.db.models_coops import CoopBan
from t3r1_fed.federation.hosts import host_of
from t3r1_fed.federation.software import host_software, origin_of
from t3r1_fed.outbox.publish import followers_of, publish
from t3r1_fed.vocab.normalize import InvalidObject, id_of, parse_object

# NodeInfo software names of servers that display FEP-1b12 `Announce(activity)`.
FEP_1B12: Final = frozenset(
    {
        "lemmy", "mbin", "kbin", "piefed", "friendica", "nodebb", "discourse", "lotide",
        "hubzilla", "streams", "forte", "t3r1-fed",
    }
)
MAX_COPY_ATTACHMENTS = 4  # what Mastodon shows
COPY_KIND = "copy"  # objects.kind of a group-authored copy (author = the group)
POLL_KEYS = ("oneOf", "anyOf", "endTime", "closed", "votersCount")  # carried to a poll's copy


def iso(dt: datetime | None = None) -> str:
    return (dt or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _strip_context(activity: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in activity.items() if k != "@context"}


def takes_announce(software: str | None) -> bool:
    return software in FEP_1B12


# ---- recipients -----------------------------------------------------------------------------


async def members_by_form(
    ctx: Context, session: AsyncSession, group: Actor
) -> tuple[list[Actor], list[Actor]]:
    """(members to send `Announce(activity)` to, members to send the group's copy to).

    Only accepted, non-banned remote members; a member on a host of unknown software is in
    both lists.
    """
    banned = set(
        (
            await session.execute(
                select(CoopBan.actor_id).where(
                    CoopBan.coop_actor_id == group.id,
                    or_(CoopBan.expires_at.is_(None), CoopBan.expires_at > utcnow()),
                )
            )
        ).scalars()
    )
    members = [
        m
        for m in await followers_of(session, group.id)
        if not m.local and m.deleted_at is None and m.id not in banned
    ]
    by_host: dict[str, list[Actor]] = defaultdict(list)
    origins: dict[str, str] = {}
    for m in members:
        inbox = m.shared_inbox or m.inbox
        try:
            host = host_of(inbox)
        except ValueError:
            continue
        by_host[host].append(m)
        origins.setdefault(host, origin_of(inbox))
    software = await host_software(ctx, session, origins)
    announce: list[Actor] = []
    copy: list[Actor] = []
    for host, actors in by_host.items():
        name = software.get(host)
        if takes_announce(name):
            announce.extend(actors)
        else:
            copy.extend(actors)
            if name is None:
                announce.extend(actors)
    return announce, copy


# ---- the group-authored copy --------------------------------------------------------------


def copy_content(author: Actor, obj: Object) -> str:
    """The copy's HTML: who wrote it (linked), the title if any, then the original."""
    href = html.escape(author.url or author.uri, quote=True)
    handle = html.escape(f"@{author.username}@{author.domain}")
    title = f"<p><strong>{html.escape(obj.name)}</strong></p>" if obj.name else ""
    return f'<p>Par <a href="{href}">{handle}</a> :</p>{title}{obj.content or ""}'


def _attachments(obj: Object) -> list[dict[str, Any]]:
    try:
        parsed = parse_object(orjson.loads(obj.raw)).attachments
    except (InvalidObject, orjson.JSONDecodeError, TypeError):
        return []
    out: list[dict[str, Any]] = []
    for a in parsed[:MAX_COPY_ATTACHMENTS]:
        item: dict[str, Any] = {"type": a.type if a.type != "Link" else "Document", "url": a.url}
        if a.media_type:
            item["mediaType"] = a.media_type
        if a.name:
            item["name"] = a.name
        out.append(item)
    return out


async def find_copy(session: AsyncSession, group: Actor, original_uri: str) -> Object | None:
    """The group's copy of the object `original_uri` (its `url` is the original's id)."""
    q = select(Object).where(
        Object.author_id == group.id,
        Object.kind == COPY_KIND,
        Object.url == original_uri,
    )
    # A thread removed then restored has a withdrawn copy and a new one: the live one first.
    q = q.order_by(Object.deleted_at.is_not(None), Object.id.desc())
    return (await session.execute(q.limit(1))).scalar()


async def _copy_document(
    session: AsyncSession, group: Actor, obj: Object, uri: str, published: str
) -> dict[str, Any]:
    author = (await session.execute(select(Actor).where(Actor.id == obj.author_id))).scalar_one()
    parent = obj.in_reply_to
    if parent:
        parent_copy = await find_copy(session, group, parent)
        if parent_copy is not None:
            parent = parent_copy.uri
    doc: dict[str, Any] = {
        "id": uri,
        "type": "Note",
        "attributedTo": group.uri,
        "content": copy_content(author, obj),
        "to": [group.followers_url or group.uri],
        "cc": [],
        "audience": group.uri,
        "published": published,
        "url": obj.uri,
        "inReplyTo": parent,
        "sensitive": obj.sensitive,
        "attachment": _attachments(obj),
    }
    if obj.summary:
        doc["summary"] = obj.summary
    if obj.language:
        doc["contentMap"] = {obj.language: doc["content"]}
    if obj.type == "Question":
        poll_fields(obj, doc)
    return doc


def poll_fields(obj: Object, doc: dict[str, Any]) -> None:
    """The copy of a poll is a `Question` itself, with the original's options, counts and
    closing (its document holds the counts as last published): Mastodon members then see
    the poll and vote on the copy (inbox/polls.py maps those votes to the original)."""
    try:
        original = orjson.loads(obj.raw)
    except (orjson.JSONDecodeError, TypeError):
        return
    if not isinstance(original, dict):
        return
    doc["type"] = "Question"
    for key in POLL_KEYS:
        if key in original:
            doc[key] = original[key]


async def _send_copy(
    ctx: Context, session: AsyncSession, group: Actor, obj: Object, recipients: list[Actor]
) -> Object:
    uri = ctx.uris.object()
    doc = await _copy_document(session, group, obj, uri, iso())
    row = Object(
        uri=uri,
        local=True,
        type=doc["type"],
        author_id=group.id,
        group_id=None,  # not content of the cooperative: a rendering of `obj` for Mastodon
        summary=obj.summary,
        content=doc["content"],
        language=obj.language,
        url=obj.uri,
        in_reply_to=doc["inReplyTo"],
        visibility="private",
        sensitive=obj.sensitive,
        raw=orjson.dumps(doc).decode(),
        published=utcnow(),
        kind=COPY_KIND,
    )
    session.add(row)
    await session.flush()
    create = {
        "id": ctx.uris.activity(),
        "type": "Create",
        "actor": group.uri,
        "object": doc,
        "to": doc["to"],
        "cc": [],
        "published": doc["published"],
    }
    await publish(ctx, session, group, create, recipients=recipients, public=False)
    return row


@on_ingest("Note", "Article", "Page", "Question", "Event")
async def _reply_to_copy(
    ctx: Context, session: AsyncSession, row: Object, raw: Mapping[str, Any]
) -> None:
    """A reply to one of our group copies (what Mastodon members see and answer) is a reply
    to the original: threaded there, and its own copy threaded on the parent's copy."""
    del raw
    target = row.in_reply_to
    if not target or not ctx.uris.is_local(target):
        return
    q = select(Object.url).where(
        Object.uri == target, Object.kind == COPY_KIND, Object.local.is_(True)
    )
    original = (await session.execute(q)).scalar()
    if original:
        row.in_reply_to = original


# ---- the three redistributions ------------------------------------------------------------


async def _announce(
    ctx: Context,
    session: AsyncSession,
    group: Actor,
    activity: dict[str, Any],
    recipients: list[Actor],
) -> str:
    wrapped = {
        "id": ctx.uris.activity(),
        "type": "Announce",
        "actor": group.uri,
        "object": _strip_context(activity),
        "to": [group.followers_url or group.uri],
        "cc": [],
        "published": iso(),
    }
    await publish(ctx, session, group, wrapped, recipients=recipients, public=False)
    return str(wrapped["id"])


async def redistribute_private(
    ctx: Context,
    session: AsyncSession,
    group: Actor,
    coop: Coop,
    activity: dict[str, Any],
    obj: Object,
) -> str:
    """A new post `obj` (received as `activity`) in private `coop`, to its members; the id
    of the group's Announce, which the caller records as the group's share."""
    del coop
    announce, copy = await members_by_form(ctx, session, group)
    share_uri = await _announce(ctx, session, group, activity, announce)
    if copy:
        await _send_copy(ctx, session, group, obj, copy)
    return share_uri


async def _original(session: AsyncSession, activity: dict[str, Any]) -> Object | None:
    oid = id_of(activity.get("object"))
    if not oid:
        return None
    return (await session.execute(select(Object).where(Object.uri == oid))).scalar()


async def announce_update_private(
    ctx: Context, session: AsyncSession, group: Actor, coop: Coop, activity: dict[str, Any]
) -> None:
    """An update of a post in private `coop`: `Announce(Update)` to 1b12 hosts, and the
    copy rewritten and sent as `Update{Note}` to the others. Other activities relayed this
    way (moderators' Remove, Lock, Add …) are announced to 1b12 hosts only: Mastodon has no
    use for them."""
    del coop
    announce, copy = await members_by_form(ctx, session, group)
    await _announce(ctx, session, group, activity, announce)
    from t3r1_fed.coops.private_moderation import copies_follow_moderation

    await copies_follow_moderation(ctx, session, group, activity, copy)
    if activity.get("type") != "Update":
        return
    obj = await _original(session, activity)
    if obj is None:
        return
    row = await find_copy(session, group, obj.uri)
    if row is None or row.deleted_at is not None:
        return
    doc = await _copy_document(session, group, obj, row.uri, iso(row.published))
    doc["updated"] = iso()
    row.content, row.summary, row.sensitive = doc["content"], obj.summary, obj.sensitive
    row.in_reply_to, row.raw, row.updated = doc["inReplyTo"], orjson.dumps(doc).decode(), utcnow()
    row.type = doc["type"]
    if copy:
        update = {
            "id": ctx.uris.activity(),
            "type": "Update",
            "actor": group.uri,
            "object": doc,
            "to": doc["to"],
            "cc": [],
        }
        await publish(ctx, session, group, update, recipients=copy, public=False)


async def announce_delete_private(
    ctx: Context,
    session: AsyncSession,
    group: Actor,
    coop: Coop,
    activity: dict[str, Any],
    obj: Object,
) -> None:
    """A deletion in private `coop`: `Announce(Delete)` and the withdrawal of the group's
    Announce to 1b12 hosts; the copy tombstoned and `Delete`d at the others."""
    del coop
    announce, copy = await members_by_form(ctx, session, group)
    followers = [group.followers_url or group.uri]
    await _announce(ctx, session, group, activity, announce)
    share = (
        await session.execute(
            select(Share).where(Share.actor_id == group.id, Share.object_id == obj.id)
        )
    ).scalar()
    if share is not None:
        undo = {
            "id": ctx.uris.activity(),
            "type": "Undo",
            "actor": group.uri,
            "object": {"id": share.uri, "type": "Announce", "actor": group.uri, "object": obj.uri},
            "to": followers,
            "cc": [],
        }
        await publish(ctx, session, group, undo, recipients=announce, public=False)
        await session.execute(delete(Share).where(Share.id == share.id))
    row = await find_copy(session, group, obj.uri)
    if row is None or row.deleted_at is not None:
        return
    from t3r1_fed.coops.private_moderation import delete_copy

    await delete_copy(ctx, session, group, row, copy)
