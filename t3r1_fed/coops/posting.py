"""Posting into a cooperative, from a local member or from a remote server.

Open cooperatives accept posts from anyone not banned; membership rules for moderated,
invite-only and private cooperatives are checked here as they land (issue #3).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.local import ActorError, get_coop, get_user
from t3r1_fed.context import Context
from t3r1_fed.coops.redistribute import announce_delete, now_iso, redistribute
from t3r1_fed.db.models import Actor, Coop, Follow, Object, utcnow
from t3r1_fed.outbox.publish import followers_of, publish
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
    await redistribute(ctx, session, group, coop, activity, obj)


async def local_post(
    ctx: Context,
    session: AsyncSession,
    username: str,
    coop_name: str,
    text: str,
    *,
    in_reply_to: str | None = None,
) -> Object:
    """A local member posts `text` (plain text) into a local cooperative."""
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
    mention = f"@{group.username}@{ctx.settings.domain}"
    html = (
        f'<p><span class="h-card"><a href="{group.url or group.uri}" class="u-url mention">'
        f"@<span>{group.username}</span></a></span></p>" + text_to_html(text)
    )
    uri = ctx.uris.object()
    if coop.private:
        to, cc, visibility = [group.uri, group.followers_url], [], "private"
    else:
        to, cc, visibility = [AS_PUBLIC], [author.followers_url, group.uri], "public"
    published = now_iso()
    note: dict[str, Any] = {
        "id": uri,
        "type": "Note",
        "attributedTo": author.uri,
        "content": html,
        "to": to,
        "cc": cc,
        "audience": group.uri,
        "published": published,
        "url": uri,
        "inReplyTo": in_reply_to,
        "sensitive": False,
        "tag": [{"type": "Mention", "href": group.uri, "name": mention}],
    }
    create = {
        "id": ctx.uris.activity(),
        "type": "Create",
        "actor": author.uri,
        "object": note,
        "to": to,
        "cc": cc,
        "published": published,
    }
    import orjson

    obj = Object(
        uri=uri,
        local=True,
        type="Note",
        author_id=author.id,
        group_id=group.id,
        content=html,
        url=uri,
        in_reply_to=in_reply_to,
        visibility=visibility,
        raw=orjson.dumps(note).decode(),
        published=utcnow(),
    )
    session.add(obj)
    await session.flush()
    # The member's own followers get the Create; the cooperative (local) handles it directly.
    await publish(
        ctx,
        session,
        author,
        create,
        recipients=await followers_of(session, author.id),
        public=not coop.private,
    )
    await accept_post(ctx, session, group, coop, create, obj, author)
    return obj


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
    delete = {
        "id": ctx.uris.activity(),
        "type": "Delete",
        "actor": author.uri,
        "object": {"id": obj.uri, "type": "Tombstone"},
        "to": [AS_PUBLIC],
    }
    await publish(ctx, session, author, delete, recipients=await followers_of(session, author.id))
    if obj.group_id is not None:
        group = (await session.execute(select(Actor).where(Actor.id == obj.group_id))).scalar_one()
        coop = await coop_for_actor(session, group.id)
        if coop is not None:
            await announce_delete(ctx, session, group, coop, delete, obj)
