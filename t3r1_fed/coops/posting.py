"""Posting into a cooperative, from a local member or from a remote server.

Open cooperatives accept posts from anyone not banned; membership rules for moderated,
invite-only and private cooperatives are checked here as they land (issue #3).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.local import ActorError, get_coop, get_user
from t3r1_fed.context import Context
from t3r1_fed.coops.redistribute import announce_delete, now_iso, redistribute
from t3r1_fed.db.models import Actor, Coop, Follow, Object, utcnow
from t3r1_fed.outbox.publish import create_activity, followers_of, publish
from t3r1_fed.vocab.context import AS_PUBLIC
from t3r1_fed.vocab.sanitize import text_to_html

MAX_POST_CHARS = 5000


class PostRefused(Exception):
    """The cooperative does not take this post; the message is the reason sent back."""


async def coop_for_actor(session: AsyncSession, actor_id: int) -> Coop | None:
    return (await session.execute(select(Coop).where(Coop.actor_id == actor_id))).scalar()


async def is_member(session: AsyncSession, group: Actor, actor: Actor) -> bool:
    q = select(Follow.id).where(
        Follow.follower_id == actor.id, Follow.followee_id == group.id, Follow.state == "accepted"
    )
    return (await session.execute(q)).first() is not None


async def check_can_post(
    session: AsyncSession, group: Actor, coop: Coop, author: Actor, obj: Object
) -> None:
    from t3r1_fed.coops.access import is_banned

    if await is_banned(session, group.id, author.id):
        raise PostRefused("you are banned from this cooperative")
    if coop.private and obj.visibility in {"public", "unlisted"}:
        raise PostRefused("public posts are not accepted into a private cooperative")
    if coop.openness != "open" or coop.private:
        # Non-open cooperatives take posts from their members only.
        from t3r1_fed.db.models import CoopRole

        role = (
            await session.execute(
                select(CoopRole.role).where(
                    CoopRole.coop_actor_id == group.id, CoopRole.actor_id == author.id
                )
            )
        ).first()
        if role is None and not await is_member(session, group, author):
            raise PostRefused("only members may post into this cooperative")


AcceptHook = Callable[[Context, AsyncSession, Actor, Coop, Object, Actor], Awaitable[None]]
# Run for every post a cooperative accepts (local or remote), after the generic checks and
# before redistribution: a feature files the post in its collection (coops/faq.py sends
# the FEP-400e `Add`) or refuses it with PostRefused. Registered with `on_accept`.
ACCEPT_HOOKS: list[AcceptHook] = []


def on_accept(fn: AcceptHook) -> AcceptHook:
    ACCEPT_HOOKS.append(fn)
    return fn


async def accept_post(
    ctx: Context,
    session: AsyncSession,
    group: Actor,
    coop: Coop,
    activity: dict[str, Any],
    obj: Object,
    author: Actor,
) -> None:
    """A post (local or remote) arrived for `group`: check it, file it, redistribute it."""
    await check_can_post(session, group, coop, author, obj)
    obj.group_id = group.id
    for hook in ACCEPT_HOOKS:  # per-type filing (FAQ Add …); may raise PostRefused
        await hook(ctx, session, group, coop, obj, author)
    await redistribute(ctx, session, group, coop, activity, obj)


def _coop_addressing(coop: Coop, group: Actor, author: Actor) -> tuple[list[str], list[str], str]:
    """(to, cc, visibility) of content posted into a cooperative."""
    if coop.private:
        return [group.uri, group.followers_url or ""], [], "private"
    return [AS_PUBLIC], [author.followers_url or "", group.uri], "public"


async def create_in_coop(
    ctx: Context,
    session: AsyncSession,
    author: Actor,
    group: Actor,
    coop: Coop,
    obj: dict[str, Any],
    *,
    kind: str = "post",
    in_reply_to: Object | None = None,
    context: str | None = None,
    uri: str | None = None,
    mentions: Sequence[Actor] = (),
) -> Object:
    """A local member publishes `obj` (a Note, Article, Page, Event, Question, Document …)
    into a local cooperative: the one path every content type takes.

    `obj` carries the type-specific fields (`type`, `content` as safe HTML, `name`,
    `summary`, `attachment`, extra `tag` …); this fills in the id, author, addressing
    (`to`/`cc` by the cooperative's privacy, `audience: group`, a `Mention` of the group so
    Mastodon shows where it was posted), `context` and `published`; stores the row; sends
    the author's `Create` to the author's followers; and has the cooperative check and
    redistribute it. Type-specific rows are added by the caller with the returned row.
    `uri` lets a caller mint the id first (a forum thread names its context after it);
    `mentions` are addressed in `cc` and sent the author's `Create` (coops/news.py).
    """
    if group.deleted_at is not None:
        raise PostRefused("this cooperative no longer exists")
    uri = uri or ctx.uris.object()  # a caller may mint it (forum threads name their context)
    to, cc, visibility = _coop_addressing(coop, group, author)
    cc = [*cc, *(m.uri for m in mentions if m.uri not in cc and m.uri not in to)]
    published = now_iso()
    mention = {
        "type": "Mention",
        "href": group.uri,
        "name": f"@{group.username}@{ctx.settings.domain}",
    }
    doc: dict[str, Any] = {
        **obj,
        "id": uri,
        "attributedTo": author.uri,
        "to": to,
        "cc": cc,
        "audience": group.uri,
        "published": published,
        "url": obj.get("url", uri),  # resources: the file (Mobilizon's Document shape)
        "inReplyTo": in_reply_to.uri if in_reply_to is not None else None,
        "tag": [mention, *obj.get("tag", [])],
    }
    doc.setdefault("sensitive", bool(obj.get("summary")))
    if context:
        doc["context"] = context
    row = Object(
        uri=uri,
        local=True,
        type=str(doc["type"]),
        author_id=author.id,
        group_id=group.id,
        name=doc.get("name"),
        summary=doc.get("summary"),
        content=doc.get("content"),
        language=next(iter(doc.get("contentMap") or {}), None),
        url=uri,
        in_reply_to=doc["inReplyTo"],
        context=context,
        visibility=visibility,
        sensitive=bool(doc["sensitive"]),
        raw=orjson.dumps(doc).decode(),
        published=utcnow(),
        kind=kind,
        thread_id=(in_reply_to.thread_id or in_reply_to.id) if in_reply_to is not None else None,
    )
    # Refuse before anything is queued, so a caller that catches PostRefused has nothing
    # half-sent to roll back.
    await check_can_post(session, group, coop, author, row)
    session.add(row)
    await session.flush()
    create = create_activity(ctx, author, doc, to=to, cc=cc, published=published)
    await publish(
        ctx,
        session,
        author,
        create,
        # In a private cooperative, members get it through the group only (coops/private.py).
        recipients=[] if coop.private else [*await followers_of(session, author.id), *mentions],
        public=not coop.private,
    )
    await accept_post(ctx, session, group, coop, create, row, author)
    return row


async def local_post(
    ctx: Context,
    session: AsyncSession,
    username: str,
    coop_name: str,
    text: str,
    *,
    in_reply_to: str | None = None,
    media_ids: Sequence[int] = (),
) -> Object:
    """A local member posts `text` (plain text) into a local cooperative, with up to four
    of their uploads (media/upload.py) as attachments."""
    text = text.strip()
    if not text:
        raise PostRefused("empty post")
    if len(text) > MAX_POST_CHARS:
        raise PostRefused(f"post longer than {MAX_POST_CHARS} characters")
    user = await get_user(session, username)
    author = (await session.execute(select(Actor).where(Actor.id == user.actor_id))).scalar_one()
    try:
        coop, group = await get_coop(session, coop_name)
    except ActorError as e:
        raise PostRefused(str(e)) from e
    parent = None
    if in_reply_to is not None:
        parent = (await session.execute(select(Object).where(Object.uri == in_reply_to))).scalar()
        if parent is None or parent.deleted_at is not None:
            raise PostRefused("the post replied to does not exist")
    html = (
        f'<p><span class="h-card"><a href="{group.url or group.uri}" class="u-url mention">'
        f"@<span>{group.username}</span></a></span></p>" + text_to_html(text)
    )
    note: dict[str, Any] = {"type": "Note", "content": html}
    attached: list[Any] = []
    if media_ids:
        from t3r1_fed.media.attach import attachments_for, link_media

        note["attachment"], attached = await attachments_for(ctx, session, author, media_ids)
    row = await create_in_coop(
        ctx,
        session,
        author,
        group,
        coop,
        note,
        kind="reply" if parent is not None else "post",
        in_reply_to=parent,
    )
    if attached:
        link_media(attached, row)
    return row


async def local_delete(ctx: Context, session: AsyncSession, username: str, object_uri: str) -> None:
    """A local member deletes their post: Delete to their followers, announced by the group."""
    user = await get_user(session, username)
    obj = (await session.execute(select(Object).where(Object.uri == object_uri))).scalar()
    if obj is None or obj.deleted_at is not None or not obj.local:
        raise PostRefused("no such post")
    if obj.author_id != user.actor_id:
        raise PostRefused("only the author may delete this post")
    author = (await session.execute(select(Actor).where(Actor.id == user.actor_id))).scalar_one()
    obj.deleted_at = utcnow()
    obj.content = None
    # A post of a private cooperative went to its members through the group only: so does
    # its deletion, addressed as the post was.
    public = obj.visibility in {"public", "unlisted"}
    delete = {
        "id": ctx.uris.activity(),
        "type": "Delete",
        "actor": author.uri,
        "object": {"id": obj.uri, "type": "Tombstone"},
        "to": [AS_PUBLIC] if public else orjson.loads(obj.raw).get("to", []),
    }
    mine = await followers_of(session, author.id) if public else []
    await publish(ctx, session, author, delete, recipients=mine, public=public)
    if obj.group_id is not None:
        group = (await session.execute(select(Actor).where(Actor.id == obj.group_id))).scalar_one()
        coop = await coop_for_actor(session, group.id)
        if coop is not None:
            await announce_delete(ctx, session, group, coop, delete, obj)
