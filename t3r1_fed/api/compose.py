"""What a status posted from a Mastodon app becomes (POST /api/v1/statuses).

- A reply to a post of a cooperative is a reply in its thread (local: coops/posting
  `create_in_coop`, remote: a `Create` addressed to the group, as coops/forum.py does).
- A status that mentions a cooperative (`@coop`, `@coop@host`, any `Group` actor) is a post
  in that cooperative: local → `create_in_coop` (posting rights, privacy and redistribution
  checked there); remote → the author's `Create` with `audience: group`, addressed to the
  group (FEP-1b12) and delivered to its inbox, which redistributes it.
- Anything else is the member's own post (outbox/personal.py), addressed as Mastodon does.

A public cooperative takes `public`/`unlisted` statuses (published as its posts are:
public); a private one `private`/`direct` (published to its members). Anything else is a
422 explaining why, nothing is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.api.entities import MAX_MEDIA, MAX_STATUS_CHARS
from t3r1_fed.context import Context
from t3r1_fed.coops.access import is_member
from t3r1_fed.coops.forum import ForumError, thread_root
from t3r1_fed.coops.news import (
    Composed,
    NewsError,
    content_fields,
    resolve_mentions,
    set_tags,
    tag_url,
)
from t3r1_fed.coops.posting import PostRefused, coop_for_actor, create_in_coop
from t3r1_fed.db.models import Actor, Coop, Object, utcnow
from t3r1_fed.db.models_coops import Media, Poll, PollOption
from t3r1_fed.media.attach import attachment_dict, link_media
from t3r1_fed.outbox.personal import VISIBILITIES, iso_now, publish_personal
from t3r1_fed.outbox.publish import create_activity, followers_of, publish
from t3r1_fed.vocab.context import AS_PUBLIC
from t3r1_fed.vocab.markup import extract_hashtags, render

# Mastodon's limits (instance configuration.polls, entities.py).
POLL_MAX_OPTIONS: Final = 10
POLL_MAX_OPTION_CHARS: Final = 100
POLL_MIN_EXPIRATION: Final = 300
POLL_MAX_EXPIRATION: Final = 2_629_746
MAX_SPOILER_CHARS: Final = 500


class ComposeError(ValueError):
    """The status cannot be posted (HTTP 422); the message says why."""


@dataclass(frozen=True)
class PollSpec:
    options: list[str]
    expires_in: int
    multiple: bool = False


@dataclass
class StatusInput:
    text: str
    visibility: str = "public"
    spoiler_text: str = ""
    sensitive: bool = False
    language: str | None = None
    media: list[Media] = field(default_factory=list)  # claimed uploads (api/media.py)
    poll: PollSpec | None = None
    in_reply_to: Object | None = None


def check_input(req: StatusInput) -> None:
    """Validation that needs no database (Mastodon's messages where it has one)."""
    if req.visibility not in VISIBILITIES:
        raise ComposeError(f"visibility must be one of {', '.join(VISIBILITIES)}")
    if not req.text.strip() and not req.media:
        raise ComposeError("Validation failed: Text can't be blank")
    if len(req.text) > MAX_STATUS_CHARS:
        raise ComposeError(f"Validation failed: Text character limit of {MAX_STATUS_CHARS} "
                           "exceeded")
    if len(req.spoiler_text) > MAX_SPOILER_CHARS:
        raise ComposeError(f"spoiler_text longer than {MAX_SPOILER_CHARS} characters")
    if len(req.media) > MAX_MEDIA:
        raise ComposeError(f"Validation failed: at most {MAX_MEDIA} media attachments")
    if req.poll is not None:
        check_poll(req.poll)
        if req.media:
            raise ComposeError("Validation failed: a poll cannot have media attachments")
        if not req.text.strip():
            raise ComposeError("Validation failed: Text can't be blank")


def check_poll(poll: PollSpec) -> None:
    names = [o.strip() for o in poll.options]
    if not 2 <= len(names) <= POLL_MAX_OPTIONS:
        raise ComposeError(f"Validation failed: a poll has 2 to {POLL_MAX_OPTIONS} options")
    if any(not n or len(n) > POLL_MAX_OPTION_CHARS for n in names):
        raise ComposeError(
            f"Validation failed: poll options are 1 to {POLL_MAX_OPTION_CHARS} characters")
    if len(set(names)) != len(names):
        raise ComposeError("Validation failed: poll options must differ")
    if not POLL_MIN_EXPIRATION <= poll.expires_in <= POLL_MAX_EXPIRATION:
        raise ComposeError(
            f"Validation failed: poll expires_in must be between {POLL_MIN_EXPIRATION} and "
            f"{POLL_MAX_EXPIRATION} seconds")


def coop_visibility_error(private: bool, visibility: str, name: str) -> str | None:
    """Why `visibility` does not fit a public/private cooperative, or None."""
    if private and visibility in ("public", "unlisted"):
        return (f"{name} is a private cooperative: its posts are seen by its members only. "
                "Post with the visibility 'private' (followers only) or 'direct' "
                "(mentioned people only).")
    if not private and visibility in ("private", "direct"):
        return (f"{name} is a public cooperative: everything posted into it is public. "
                "Post with the visibility 'public' or 'unlisted', or do not mention it.")
    return None


@dataclass
class _Target:
    """Where the status goes: a cooperative (local `coop` or remote), or nowhere."""

    group: Actor | None = None
    coop: Coop | None = None
    parent: Object | None = None

    @property
    def private(self) -> bool:
        if self.coop is not None:
            return self.coop.private
        return False


async def _target(
    session: AsyncSession, req: StatusInput, mentioned: Sequence[Actor]
) -> _Target:
    parent = req.in_reply_to
    group: Actor | None = None
    if parent is not None and parent.group_id is not None:
        group = await session.get(Actor, parent.group_id)
        if group is None or group.deleted_at is not None:
            raise ComposeError("this cooperative no longer exists")
    else:
        groups = list({a.id: a for a in mentioned if a.type == "Group"}.values())
        if len(groups) > 1:
            raise ComposeError("a status can be posted into one cooperative only: mention a "
                               "single cooperative")
        group = groups[0] if groups else None
    if group is None:
        return _Target(parent=parent)
    coop = await coop_for_actor(session, group.id) if group.local else None
    if group.local and coop is None:
        return _Target(parent=parent)  # a local Group that is no cooperative: a mention
    return _Target(group, coop, parent)


async def post_status(
    ctx: Context, session: AsyncSession, author: Actor, req: StatusInput
) -> Object:
    """Publish a status of `author` (see the module docstring for where it goes)."""
    check_input(req)
    text = req.text.strip()
    found = await resolve_mentions(ctx, session, text) if text else {}
    target = await _target(session, req, list(found.values()))
    group = target.group
    remote_private = False
    if group is not None and target.coop is not None:
        error = coop_visibility_error(target.coop.private, req.visibility, group.username)
        if error:
            raise ComposeError(error)
    elif group is not None:
        remote_private = req.visibility in ("private", "direct")
    if target.private:  # in a private cooperative only members can be mentioned
        assert group is not None
        found = {k: a for k, a in found.items()
                 if a.id == group.id or await is_member(session, group.id, a.id)}
    hrefs = {key: a.url or a.uri for key, a in found.items()}
    html = render(text, tag_href=lambda t: tag_url(ctx, t), mentions=hrefs) if text else ""
    hashtags = extract_hashtags(text)
    mentioned = [a for a in {a.id: a for a in found.values()}.values()
                 if group is None or a.id != group.id]
    tags: list[dict[str, Any]] = [
        {"type": "Hashtag", "href": tag_url(ctx, t), "name": f"#{t}"} for t in hashtags
    ]
    tags += [{"type": "Mention", "href": a.uri, "name": f"@{a.username}@{a.domain}"}
             for a in mentioned]
    fields: dict[str, Any] = {"type": "Question" if req.poll else "Note"}
    try:
        fields.update(_content(html, tags, req))
    except NewsError as e:
        raise ComposeError(str(e)) from e
    media = list(req.media)
    if any(m.owner_id != author.id or m.object_id is not None for m in media):
        raise ComposeError("Media not found or already attached to another post")
    if media:
        fields["attachment"] = [attachment_dict(ctx, m) for m in media]
    if req.poll is not None:
        fields.update(_question(req.poll))
    fields["source"] = {"content": req.text, "mediaType": "text/plain"}
    kind = "reply" if target.parent is not None else ("poll" if req.poll else "post")
    try:
        if group is not None and target.coop is not None:
            root = await thread_root(session, target.parent) if target.parent else None
            if root is not None and root.locked_at is not None:
                raise ComposeError("this discussion is locked")
            row = await create_in_coop(
                ctx, session, author, group, target.coop, fields, kind=kind,
                in_reply_to=target.parent, context=root.context if root else None,
                mentions=mentioned,
            )
        elif group is not None:
            row = await post_to_remote_group(
                ctx, session, author, group, fields, parent=target.parent,
                mentions=mentioned, private=remote_private,
                unlisted=req.visibility == "unlisted", kind=kind,
            )
        else:
            addressees = list(mentioned)
            if target.parent is not None:
                parent_author = await session.get(Actor, target.parent.author_id)
                if parent_author is not None:
                    addressees.append(parent_author)
            row = await publish_personal(
                ctx, session, author, fields, visibility=req.visibility,
                mentions=addressees, in_reply_to=target.parent, kind=kind,
            )
    except (PostRefused, ForumError) as e:
        raise ComposeError(str(e)) from e
    await set_tags(session, row, hashtags)
    if media:
        link_media(media, row)
    if req.poll is not None:
        names = [o.strip() for o in req.poll.options]
        session.add(Poll(object_id=row.id, multiple=req.poll.multiple,
                         closes_at=utcnow() + timedelta(seconds=req.poll.expires_in),
                         voters_count=0))
        session.add_all(PollOption(poll_id=row.id, position=i, name=n, votes=0)
                        for i, n in enumerate(names))
    await session.flush()
    return row


def _content(html: str, tags: list[dict[str, Any]], req: StatusInput) -> dict[str, Any]:
    fields = content_fields(Composed(html, [], [], tags), summary=req.spoiler_text or None,
                            language=req.language or None)
    fields["sensitive"] = bool(req.sensitive or fields.get("sensitive"))
    return fields


def _question(poll: PollSpec) -> dict[str, Any]:
    names = [o.strip() for o in poll.options]
    closes = utcnow() + timedelta(seconds=poll.expires_in)
    return {
        "anyOf" if poll.multiple else "oneOf": [
            {"type": "Note", "name": n, "replies": {"type": "Collection", "totalItems": 0}}
            for n in names
        ],
        "votersCount": 0,
        "endTime": closes.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def remote_group_addressing(
    author: Actor, group: Actor, *, private: bool, unlisted: bool = False
) -> tuple[list[str], list[str], str]:
    """(to, cc, visibility) of a post into a remote group, as coops/forum.py addresses
    replies in remote threads: public → to Public, cc the author's followers and the
    group; private → the group and its followers only."""
    if private:
        return [group.uri, group.followers_url or group.uri], [], "private"
    if unlisted:
        return [group.uri], [AS_PUBLIC, author.followers_url or ""], "unlisted"
    return [AS_PUBLIC], [author.followers_url or "", group.uri], "public"


async def post_to_remote_group(
    ctx: Context,
    session: AsyncSession,
    author: Actor,
    group: Actor,
    fields: dict[str, Any],
    *,
    parent: Object | None,
    mentions: Sequence[Actor],
    private: bool,
    unlisted: bool = False,
    kind: str = "post",
) -> Object:
    """A post (or a reply in a thread) into a remote group: the author's `Create` with
    `audience: group`, delivered to the group's inbox (FEP-1b12), which redistributes it,
    and to the author's followers and the mentioned actors when public."""
    root = await thread_root(session, parent) if parent is not None else None
    to, cc, visibility = remote_group_addressing(author, group, private=private,
                                                 unlisted=unlisted)
    extra = list(mentions)
    if parent is not None:
        parent_author = await session.get(Actor, parent.author_id)
        if parent_author is not None:
            extra.append(parent_author)
    cc += [a.uri for a in extra if a.uri not in cc and a.uri not in to and a.id != author.id]
    uri = ctx.uris.object()
    published = iso_now()
    group_tag = {"type": "Mention", "href": group.uri, "name": f"@{group.username}@{group.domain}"}
    doc: dict[str, Any] = {
        **fields,
        "id": uri,
        "attributedTo": author.uri,
        "to": [a for a in to if a],
        "cc": [a for a in cc if a],
        "audience": group.uri,
        "inReplyTo": parent.uri if parent is not None else None,
        "published": published,
        "url": uri,
        "tag": [group_tag, *fields.get("tag", [])],
    }
    doc.setdefault("sensitive", False)
    if root is not None and root.context:
        doc["context"] = root.context
    row = Object(
        uri=uri, local=True, type=str(doc["type"]), author_id=author.id, group_id=group.id,
        summary=doc.get("summary"), content=doc.get("content"),
        language=next(iter(doc.get("contentMap") or {}), None), url=uri,
        in_reply_to=doc["inReplyTo"], context=doc.get("context"), visibility=visibility,
        sensitive=bool(doc["sensitive"]), raw=orjson.dumps(doc).decode(), published=utcnow(),
        kind=kind, thread_id=root.id if root is not None else None,
    )
    session.add(row)
    await session.flush()
    create = create_activity(ctx, author, doc, to=doc["to"], cc=doc["cc"],
                             published=published, audience=group.uri)
    recipients = [group, *[a for a in extra if a.id != author.id]]
    if not private:
        recipients += await followers_of(session, author.id)
    await publish(ctx, session, author, create, recipients=recipients, public=not private)
    return row


async def edit_fields(
    ctx: Context,
    session: AsyncSession,
    obj: Object,
    *,
    text: str | None,
    spoiler_text: str | None,
    sensitive: bool | None,
    language: str | None,
    has_media: bool | None = None,
) -> dict[str, Any]:
    """The JSON properties an edit of `obj` changes (PUT /api/v1/statuses/:id); hashtags
    are stored again. Parameters left out (None) keep their value."""
    doc = orjson.loads(obj.raw)
    old_source = doc.get("source") if isinstance(doc.get("source"), dict) else {}
    if text is None:
        text = str(old_source.get("content", "")) if old_source else None
    if spoiler_text is None:
        spoiler_text = obj.summary or ""
    if language is None:
        language = obj.language
    if sensitive is None:
        sensitive = obj.sensitive
    req = StatusInput(text=text or "", spoiler_text=spoiler_text.strip(),
                      sensitive=sensitive, language=language)
    if text is None:  # no source kept (an old post): the text stays as it is
        if len(req.spoiler_text) > MAX_SPOILER_CHARS:
            raise ComposeError(f"spoiler_text longer than {MAX_SPOILER_CHARS} characters")
        try:
            fields = _content(obj.content or "", list(doc.get("tag") or []), req)
        except NewsError as e:
            raise ComposeError(str(e)) from e
    else:
        if not req.text.strip() and not (doc.get("attachment") if has_media is None
                                         else has_media):
            raise ComposeError("Validation failed: Text can't be blank")
        if len(req.text) > MAX_STATUS_CHARS:
            raise ComposeError(
                f"Validation failed: Text character limit of {MAX_STATUS_CHARS} exceeded")
        group = await session.get(Actor, obj.group_id) if obj.group_id is not None else None
        found = await resolve_mentions(ctx, session, req.text.strip()) if req.text.strip() else {}
        hrefs = {key: a.url or a.uri for key, a in found.items()}
        html = render(req.text.strip(), tag_href=lambda t: tag_url(ctx, t), mentions=hrefs)
        hashtags = extract_hashtags(req.text)
        tags: list[dict[str, Any]] = [
            t for t in doc.get("tag") or []
            if isinstance(t, dict) and group is not None and t.get("href") == group.uri
        ]
        tags += [{"type": "Hashtag", "href": tag_url(ctx, t), "name": f"#{t}"}
                 for t in hashtags]
        tags += [{"type": "Mention", "href": a.uri, "name": f"@{a.username}@{a.domain}"}
                 for a in {a.id: a for a in found.values()}.values()
                 if group is None or a.id != group.id]
        try:
            fields = _content(html, tags, req)
        except NewsError as e:
            raise ComposeError(str(e)) from e
        fields["source"] = {"content": req.text, "mediaType": "text/plain"}
        await set_tags(session, obj, hashtags)
    fields.setdefault("summary", None)
    fields.setdefault("contentMap", None)
    return fields
