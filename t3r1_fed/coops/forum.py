"""Forum discussions: threads (`Page` with a `name`) and their replies (`Note`).

Every thread of a local cooperative has a `context` owned by the group (FEP-7888,
FEP-11dd): `{group}/discussions/{thread-id}`, an OrderedCollection of the thread's objects
served by handlers/forum.py, which other servers can backfill from (FEP-f228). Replies
carry the same `context`, `inReplyTo` and `audience: group`; they are redistributed as
`Announce(activity)` only, never boosted to Mastodon (coops/redistribute.py).

A member may reply to a thread of a local cooperative (coops/posting.create_in_coop) or of
a remote one (a `Create` addressed to the remote group and delivered to its inbox; the
group redistributes it). A locked thread (objects.locked_at, set by moderation) takes no
new reply, local or remote (an accept hook refuses it, and remote authors get a Reject).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.coops.news import (
    MAX_TITLE_CHARS,
    NewsError,
    add_attachments,
    compose,
    content_fields,
    local_coop,
    set_tags,
)
from t3r1_fed.coops.posting import (
    PostRefused,
    coop_for_actor,
    create_in_coop,
    on_accept,
)
from t3r1_fed.coops.redistribute import now_iso
from t3r1_fed.db.models import Actor, Coop, Object, utcnow
from t3r1_fed.outbox.publish import create_activity, followers_of, publish
from t3r1_fed.uris import new_id
from t3r1_fed.vocab.context import AS_PUBLIC

DISCUSSIONS: Final = "discussions"


class ForumError(NewsError):
    """A thread or reply cannot be posted; the message is for the member."""


def context_url(ctx: Context, group: Actor, oid: str) -> str:
    """The FEP-7888 context of the thread whose root is `/o/{oid}`."""
    return ctx.uris.sub(group.uri, f"{DISCUSSIONS}/{oid}")


async def thread_root(session: AsyncSession, obj: Object) -> Object:
    """The root of the thread `obj` belongs to (itself for a root)."""
    if obj.thread_id is None:
        return obj
    root = await session.get(Object, obj.thread_id)
    return root if root is not None else obj


async def start_thread(
    ctx: Context,
    session: AsyncSession,
    author: Actor,
    coop_name: str,
    title: str,
    text: str,
    *,
    markdown: bool = True,
    summary: str | None = None,
    language: str | None = None,
    attachments: Sequence[Mapping[str, Any]] | None = None,
) -> Object:
    """`author` opens a discussion in the local cooperative `coop_name`."""
    title = title.strip()
    if not title:
        raise ForumError("a discussion needs a title")
    if len(title) > MAX_TITLE_CHARS:
        raise ForumError(f"title longer than {MAX_TITLE_CHARS} characters")
    coop, group = await local_coop(session, coop_name)
    composed = await compose(
        ctx, session, text, markdown=markdown, group=group, members_only=coop.private
    )
    obj: dict[str, Any] = {"type": "Page", "name": title}
    obj.update(content_fields(composed, summary=summary, language=language))
    add_attachments(obj, attachments)
    oid = new_id()
    try:
        row = await create_in_coop(
            ctx,
            session,
            author,
            group,
            coop,
            obj,
            kind="thread",
            context=context_url(ctx, group, oid),
            uri=ctx.uris.object(oid),
            mentions=composed.mentions,
        )
    except PostRefused as e:
        raise ForumError(str(e)) from e
    await set_tags(session, row, composed.hashtags)
    return row


async def reply(
    ctx: Context,
    session: AsyncSession,
    author: Actor,
    parent_uri: str,
    text: str,
    *,
    markdown: bool = False,
    summary: str | None = None,
    language: str | None = None,
    attachments: Sequence[Mapping[str, Any]] | None = None,
) -> Object:
    """`author` replies to `parent_uri` (a thread or a reply) in a cooperative, local or
    remote."""
    parent = (await session.execute(select(Object).where(Object.uri == parent_uri))).scalar()
    if parent is None or parent.deleted_at is not None or parent.removed_at is not None:
        raise ForumError("the post replied to does not exist")
    if parent.group_id is None:
        raise ForumError("the post replied to is not in a cooperative")
    group = await session.get(Actor, parent.group_id)
    if group is None or group.deleted_at is not None:
        raise ForumError("this cooperative no longer exists")
    root = await thread_root(session, parent)
    if root.locked_at is not None:
        raise ForumError("this discussion is locked")
    coop = await coop_for_actor(session, group.id) if group.local else None
    private = coop.private if coop is not None else parent.visibility not in ("public", "unlisted")
    composed = await compose(
        ctx, session, text, markdown=markdown, group=group, members_only=private
    )
    obj: dict[str, Any] = {"type": "Note"}
    obj.update(content_fields(composed, summary=summary, language=language))
    add_attachments(obj, attachments)
    if coop is not None:
        try:
            row = await create_in_coop(
                ctx,
                session,
                author,
                group,
                coop,
                obj,
                kind="reply",
                in_reply_to=parent,
                context=root.context,
                mentions=composed.mentions,
            )
        except PostRefused as e:
            raise ForumError(str(e)) from e
    else:
        row = await _reply_to_remote_group(
            ctx, session, author, group, parent, root, obj, composed.mentions, private=private
        )
    await set_tags(session, row, composed.hashtags)
    return row


async def _reply_to_remote_group(
    ctx: Context,
    session: AsyncSession,
    author: Actor,
    group: Actor,
    parent: Object,
    root: Object,
    obj: dict[str, Any],
    mentions: Sequence[Actor],
    *,
    private: bool,
) -> Object:
    """A reply into a remote group's thread: the author's `Create`, addressed to the group
    (FEP-1b12: `cc`/`audience`), delivered to the group's inbox, which redistributes it."""
    parent_author = await session.get(Actor, parent.author_id)
    uri = ctx.uris.object()
    if private:
        to, cc, visibility = [group.uri, group.followers_url or group.uri], [], "private"
    else:
        to, cc, visibility = [AS_PUBLIC], [author.followers_url or "", group.uri], "public"
    extra = [parent_author, *mentions] if parent_author is not None else list(mentions)
    cc += [a.uri for a in extra if a.uri not in cc and a.uri not in to and a.id != author.id]
    published = now_iso()
    group_tag = {"type": "Mention", "href": group.uri, "name": f"@{group.username}@{group.domain}"}
    doc: dict[str, Any] = {
        **obj,
        "id": uri,
        "attributedTo": author.uri,
        "to": [a for a in to if a],
        "cc": [a for a in cc if a],
        "audience": group.uri,
        "inReplyTo": parent.uri,
        "published": published,
        "url": uri,
        "tag": [group_tag, *obj.get("tag", [])],
    }
    doc.setdefault("sensitive", False)
    if root.context:
        doc["context"] = root.context
    row = Object(
        uri=uri,
        local=True,
        type="Note",
        author_id=author.id,
        group_id=group.id,
        summary=doc.get("summary"),
        content=doc.get("content"),
        language=next(iter(doc.get("contentMap") or {}), None),
        url=uri,
        in_reply_to=parent.uri,
        context=root.context,
        visibility=visibility,
        sensitive=bool(doc["sensitive"]),
        raw=orjson.dumps(doc).decode(),
        published=utcnow(),
        kind="reply",
        thread_id=root.id,
    )
    session.add(row)
    await session.flush()
    create = create_activity(ctx, author, doc, to=doc["to"], cc=doc["cc"],
                             published=published, audience=group.uri)
    recipients = [group, *extra]
    if not private:
        recipients += await followers_of(session, author.id)
    await publish(ctx, session, author, create, recipients=recipients, public=not private)
    return row


@on_accept
async def _refuse_in_locked_thread(
    ctx: Context, session: AsyncSession, group: Actor, coop: Coop, obj: Object, author: Actor
) -> None:
    """No new reply in a locked discussion (local or remote: remote authors get Reject)."""
    if obj.thread_id is None:
        return
    root = await session.get(Object, obj.thread_id)
    if root is not None and root.locked_at is not None:
        obj.group_id = None  # not filed in the cooperative
        raise PostRefused("this discussion is locked")
