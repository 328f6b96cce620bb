"""News posts: a member publishes a `Note` (short, untitled) or an `Article` (titled) into
a cooperative, with hashtags, mentions, a content warning and a language.

What this adds to the plain path of coops/posting.py:
- text typed as plain text or Markdown (CommonMark: vocab/markup.py), always sanitised;
- `#tags` → `Hashtag` tags (href `{base}/tags/{tag}`) and rows in `object_tags`, for our
  posts and — through an ingest hook — for remote Note/Article/Page;
- `@user@host` → WebFinger-resolved `Mention` tags, addressed in `cc` and sent the
  author's `Create` (public cooperatives; in a private one only members can be mentioned,
  and they get it through the group);
- `summary` + `sensitive: true` for a content warning; `contentMap: {lang: html}`.
Attachments (AS2 dicts from the media feature) pass straight into the object.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.follows import resolve_target
from t3r1_fed.actors.local import ActorError, get_coop, get_user, local_actor_by_name
from t3r1_fed.context import Context
from t3r1_fed.coops.access import is_member
from t3r1_fed.coops.kinds import on_ingest
from t3r1_fed.coops.posting import PostRefused, create_in_coop
from t3r1_fed.db.models import Actor, Coop, Object
from t3r1_fed.db.models_coops import ObjectTag
from t3r1_fed.vocab.markdown import markdown_source
from t3r1_fed.vocab.markup import (
    extract_hashtags,
    extract_mentions,
    hashtags_of,
    render,
    valid_language,
)

MAX_NEWS_CHARS: Final = 20_000
MAX_TITLE_CHARS: Final = 300
MAX_CW_CHARS: Final = 500
MAX_ATTACHMENTS: Final = 4


class NewsError(ValueError):
    """A post cannot be published; the message is for the member."""


@dataclass
class Composed:
    """A member's text made ready for an object: HTML and the tags it implies."""

    html: str
    hashtags: list[str]
    mentions: list[Actor]
    tags: list[dict[str, Any]] = field(default_factory=list)
    source: dict[str, str] | None = None  # the Markdown typed, as Lemmy publishes it


def tag_url(ctx: Context, tag: str) -> str:
    return f"{ctx.uris.base}/tags/{quote(tag)}"


async def member_actor(session: AsyncSession, username: str) -> Actor:
    """The Person actor of a local member (for callers that know a username)."""
    try:
        user = await get_user(session, username)
    except ActorError as e:
        raise NewsError(str(e)) from e
    return (await session.execute(select(Actor).where(Actor.id == user.actor_id))).scalar_one()


async def local_coop(session: AsyncSession, name: str) -> tuple[Coop, Actor]:
    try:
        return await get_coop(session, name)
    except ActorError as e:
        raise NewsError(str(e)) from e


async def resolve_mentions(
    ctx: Context,
    session: AsyncSession,
    text: str,
    *,
    group: Actor | None = None,
    members_only: bool = False,
) -> dict[tuple[str, str | None], Actor]:
    """The actors `@mentioned` in `text` (local names, or WebFinger for remote ones).

    Unknown or unreachable accounts are skipped (the text stays as typed). With
    `members_only` (private cooperatives) only accepted members of `group` are kept.
    """
    found: dict[tuple[str, str | None], Actor] = {}
    for user, host in extract_mentions(text):
        actor: Actor | None
        if host is None or host == ctx.settings.domain.lower():
            actor = await local_actor_by_name(session, ctx.settings.domain, user)
        else:
            try:
                actor = await resolve_target(ctx, session, f"{user}@{host}")
            except ActorError:
                actor = None
        if actor is None or actor.deleted_at is not None:
            continue
        if members_only and (group is None or not await is_member(session, group.id, actor.id)):
            continue
        found[(user, host)] = actor
    return found


async def compose(
    ctx: Context,
    session: AsyncSession,
    text: str,
    *,
    markdown: bool = False,
    group: Actor | None = None,
    members_only: bool = False,
) -> Composed:
    """Render `text` and build its `Hashtag` and `Mention` tags."""
    text = text.strip()
    if not text:
        raise NewsError("empty post")
    if len(text) > MAX_NEWS_CHARS:
        raise NewsError(f"post longer than {MAX_NEWS_CHARS} characters")
    mentioned = await resolve_mentions(
        ctx, session, text, group=group, members_only=members_only
    )
    hrefs = {key: actor.url or actor.uri for key, actor in mentioned.items()}
    html = render(text, markdown=markdown, tag_href=lambda t: tag_url(ctx, t), mentions=hrefs)
    hashtags = extract_hashtags(text)
    actors = list({a.id: a for a in mentioned.values() if group is None or a.id != group.id}
                  .values())
    tags: list[dict[str, Any]] = [
        {"type": "Hashtag", "href": tag_url(ctx, t), "name": f"#{t}"} for t in hashtags
    ]
    tags += [{"type": "Mention", "href": a.uri, "name": f"@{a.username}@{a.domain}"}
             for a in actors]
    return Composed(html, hashtags, actors, tags, markdown_source(text) if markdown else None)


def content_fields(
    composed: Composed, *, summary: str | None = None, language: str | None = None
) -> dict[str, Any]:
    """`content` (+ `contentMap`), `summary`/`sensitive` (content warning) and `tag`."""
    fields: dict[str, Any] = {"content": composed.html, "tag": composed.tags}
    if composed.source is not None:
        fields["source"] = composed.source
    lang = valid_language(language)
    if language is not None and lang is None:
        raise NewsError(f"invalid language {language!r}")
    if lang:
        fields["contentMap"] = {lang: composed.html}
    cw = (summary or "").strip()
    if len(cw) > MAX_CW_CHARS:
        raise NewsError(f"content warning longer than {MAX_CW_CHARS} characters")
    if cw:
        fields["summary"] = cw
        fields["sensitive"] = True
    return fields


def add_attachments(
    obj: dict[str, Any], attachments: Sequence[Mapping[str, Any]] | None
) -> None:
    """AS2 attachment dicts (made by the media feature) go into the object as they are."""
    if not attachments:
        return
    if len(attachments) > MAX_ATTACHMENTS:
        raise NewsError(f"at most {MAX_ATTACHMENTS} attachments")
    obj["attachment"] = [dict(a) for a in attachments]


async def set_tags(session: AsyncSession, obj: Object, tags: Iterable[str]) -> None:
    """Replace the hashtags stored for `obj`."""
    await session.execute(delete(ObjectTag).where(ObjectTag.object_id == obj.id))
    for tag in dict.fromkeys(tags):
        session.add(ObjectTag(object_id=obj.id, tag=tag))
    await session.flush()


async def publish_news(
    ctx: Context,
    session: AsyncSession,
    author: Actor,
    coop_name: str,
    text: str,
    *,
    title: str | None = None,
    markdown: bool = False,
    summary: str | None = None,
    language: str | None = None,
    attachments: Sequence[Mapping[str, Any]] | None = None,
) -> Object:
    """`author` publishes a news post into the local cooperative `coop_name`: an
    `Article` when it has a title, else a `Note`."""
    coop, group = await local_coop(session, coop_name)
    composed = await compose(
        ctx, session, text, markdown=markdown, group=group, members_only=coop.private
    )
    obj: dict[str, Any] = {"type": "Note"}
    if title is not None and title.strip():
        if len(title.strip()) > MAX_TITLE_CHARS:
            raise NewsError(f"title longer than {MAX_TITLE_CHARS} characters")
        obj = {"type": "Article", "name": title.strip()}
    obj.update(content_fields(composed, summary=summary, language=language))
    add_attachments(obj, attachments)
    try:
        row = await create_in_coop(
            ctx, session, author, group, coop, obj, kind="post", mentions=composed.mentions
        )
    except PostRefused as e:
        raise NewsError(str(e)) from e
    await set_tags(session, row, composed.hashtags)
    return row


@on_ingest("Note", "Article", "Page")
async def _remote_hashtags(
    ctx: Context, session: AsyncSession, row: Object, raw: Mapping[str, Any]
) -> None:
    """Remote objects: keep their hashtags searchable (object_tags), updates included."""
    await set_tags(session, row, hashtags_of(raw))
