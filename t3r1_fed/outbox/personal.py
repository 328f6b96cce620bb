"""A member's own posts (outside any cooperative): Create, Update and Delete of a Note or
Question by the Person, addressed as Mastodon addresses statuses.

| visibility | to | cc |
|---|---|---|
| public | Public | followers, mentioned |
| unlisted | followers | Public, mentioned |
| private | followers | mentioned |
| direct | mentioned | — |

Delivered to the author's followers' inboxes (not for `direct`) and to every mentioned
actor. `Mention` rows follow from the object's `Mention` tags (notify/events.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.db.models import Actor, Mention, Object, utcnow
from t3r1_fed.outbox.publish import create_activity, followers_of, publish
from t3r1_fed.vocab.context import AS_PUBLIC

VISIBILITIES: Final = ("public", "unlisted", "private", "direct")


def iso_now() -> str:
    return utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")


def addressing(
    visibility: str, followers_url: str | None, mentioned: Sequence[str]
) -> tuple[list[str], list[str]]:
    """(to, cc) of a personal status, as Mastodon's ActivityPub::TagManager sets them."""
    followers = [followers_url] if followers_url else []
    mentions = list(dict.fromkeys(mentioned))
    if visibility == "public":
        return [AS_PUBLIC], [*followers, *mentions]
    if visibility == "unlisted":
        return followers, [AS_PUBLIC, *mentions]
    if visibility == "private":
        return followers, mentions
    if visibility == "direct":
        return mentions, []
    raise ValueError(f"unknown visibility {visibility!r}")


async def publish_personal(
    ctx: Context,
    session: AsyncSession,
    author: Actor,
    fields: dict[str, Any],
    *,
    visibility: str,
    mentions: Sequence[Actor] = (),
    in_reply_to: Object | None = None,
    kind: str = "post",
) -> Object:
    """`author` publishes `fields` (`type`, `content`, `tag`, `summary`, `attachment` …)
    as their own post: stored (local, no cooperative) and sent in a `Create`."""
    uri = ctx.uris.object()
    mentioned = [m for m in mentions if m.id != author.id]
    to, cc = addressing(visibility, author.followers_url, [m.uri for m in mentioned])
    published = iso_now()
    doc: dict[str, Any] = {
        **fields,
        "id": uri,
        "attributedTo": author.uri,
        "to": to,
        "cc": cc,
        "published": published,
        "url": uri,
        "inReplyTo": in_reply_to.uri if in_reply_to is not None else None,
    }
    doc.setdefault("sensitive", bool(fields.get("summary")))
    row = Object(
        uri=uri,
        local=True,
        type=str(doc["type"]),
        author_id=author.id,
        summary=doc.get("summary"),
        content=doc.get("content"),
        language=next(iter(doc.get("contentMap") or {}), None),
        url=uri,
        in_reply_to=doc["inReplyTo"],
        visibility=visibility,
        sensitive=bool(doc["sensitive"]),
        raw=orjson.dumps(doc).decode(),
        published=utcnow(),
        kind=kind,
    )
    session.add(row)
    await session.flush()
    create = create_activity(ctx, author, doc, to=to, cc=cc, published=published)
    followers = [] if visibility == "direct" else await followers_of(session, author.id)
    await publish(ctx, session, author, create, recipients=[*followers, *mentioned],
                  public=visibility in ("public", "unlisted"))
    return row


async def audience_of(session: AsyncSession, obj: Object) -> list[Actor]:
    """Who received `obj` besides its author's followers: mentioned actors, the remote
    group it was posted into, the author of the post it answers."""
    rows = list((await session.execute(
        select(Actor).join(Mention, Mention.actor_id == Actor.id)
        .where(Mention.object_id == obj.id)
    )).scalars())
    if obj.group_id is not None:
        group = await session.get(Actor, obj.group_id)
        if group is not None:
            rows.append(group)
    if obj.in_reply_to:
        parent_author = (await session.execute(
            select(Actor).join(Object, Object.author_id == Actor.id)
            .where(Object.uri == obj.in_reply_to)
        )).scalar()
        if parent_author is not None:
            rows.append(parent_author)
    return list({a.id: a for a in rows if a.id != obj.author_id}.values())


async def _recipients(session: AsyncSession, obj: Object) -> list[Actor]:
    others = await audience_of(session, obj)
    if obj.visibility == "direct":
        return others
    doc = orjson.loads(obj.raw)
    author = await session.get(Actor, obj.author_id)
    addressed = {*_as_list(doc.get("to")), *_as_list(doc.get("cc"))}
    followers: list[Actor] = []
    if author is not None and author.followers_url in addressed:
        followers = await followers_of(session, obj.author_id)
    return [*followers, *others]


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


async def delete_personal(
    ctx: Context, session: AsyncSession, author: Actor, obj: Object
) -> None:
    """The author deletes a post that is not in a local cooperative (their own posts, and
    posts into remote groups): `Delete{Tombstone}` to everyone who received it."""
    doc = orjson.loads(obj.raw)
    recipients = await _recipients(session, obj)
    obj.deleted_at = utcnow()
    obj.content = None
    delete = {
        "id": ctx.uris.activity(),
        "type": "Delete",
        "actor": author.uri,
        "object": {"id": obj.uri, "type": "Tombstone"},
        "to": _as_list(doc.get("to")),
        "cc": _as_list(doc.get("cc")),
    }
    await publish(ctx, session, author, delete, recipients=recipients,
                  public=obj.visibility in ("public", "unlisted"))


async def update_personal(
    ctx: Context, session: AsyncSession, author: Actor, obj: Object, changes: dict[str, Any]
) -> dict[str, Any]:
    """The author edits a post that is not in a local cooperative: new JSON, `Update` to
    everyone who received it. Returns the new JSON."""
    doc: dict[str, Any] = {**orjson.loads(obj.raw), **changes, "updated": iso_now()}
    for key in [k for k, v in changes.items() if v is None]:
        doc.pop(key, None)
    obj.raw = orjson.dumps(doc).decode()
    obj.content = doc.get("content")
    obj.summary = doc.get("summary")
    obj.sensitive = bool(doc.get("sensitive"))
    obj.language = next(iter(doc.get("contentMap") or {}), None)
    obj.updated = utcnow()
    update = {
        "id": ctx.uris.activity(),
        "type": "Update",
        "actor": author.uri,
        "object": doc,
        "to": _as_list(doc.get("to")),
        "cc": _as_list(doc.get("cc")),
        "published": doc["updated"],
    }
    await publish(ctx, session, author, update, recipients=await _recipients(session, obj),
                  public=obj.visibility in ("public", "unlisted"))
    return doc
