"""Reports (`Flag`) about a cooperative's content: the service API.

A report reaches the cooperative's moderators and nobody else. Into a local cooperative it
is stored (`flags`) for local moderators (`list_flags`) and forwarded, as a `Flag` by the
group, to the inbox of each remote moderator only — never to other members' instances.
A local member reporting content of a remote cooperative sends `Flag` to the group's
inbox (Lemmy's shape, samples/lemmy/activities/community/report_page.json).
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.coops.moderation import ModerationError
from t3r1_fed.coops.moderators import (
    ModeratorsUnavailable,
    is_group_moderator,
    local_moderators,
)
from t3r1_fed.db.models import Actor, Object
from t3r1_fed.db.models_coops import Flag
from t3r1_fed.outbox.publish import publish

MAX_FLAG_OBJECTS = 20
MAX_COMMENT_CHARS = 2000


def _clean(object_uris: list[str], comment: str | None) -> tuple[list[str], str | None]:
    uris = list(dict.fromkeys(u.strip() for u in object_uris if u.strip()))
    if not uris:
        raise ModerationError("a report names at least one post or account")
    if len(uris) > MAX_FLAG_OBJECTS or any(not u.startswith(("http://", "https://")) for u in uris):
        raise ModerationError(f"a report names at most {MAX_FLAG_OBJECTS} http(s) URLs")
    text = (comment or "").strip()
    if len(text) > MAX_COMMENT_CHARS:
        raise ModerationError(f"comment longer than {MAX_COMMENT_CHARS} characters")
    return uris, text or None


def flag_document(uri: str, actor: str, objects: list[str], comment: str | None,
                  to: list[str], group: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": uri, "type": "Flag", "actor": actor, "object": objects,
                           "to": to, "audience": group}
    if comment:
        doc["content"] = comment  # Mastodon's term
        doc["summary"] = comment  # Lemmy's term
    return doc


async def forward_flag(ctx: Context, session: AsyncSession, group: Actor, flag: Flag) -> int:
    """Send a stored report, as a `Flag` by the group, to each remote moderator's inbox.
    Returns how many moderators it went to."""
    mods = [m for m in await local_moderators(session, group.id) if not m.local]
    if not mods:
        return 0
    doc = flag_document(ctx.uris.activity(), group.uri, orjson.loads(flag.object_uris),
                        flag.comment, [m.uri for m in mods], group.uri)
    await publish(ctx, session, group, doc, recipients=mods, public=False)
    return len(mods)


async def store_flag(
    session: AsyncSession,
    uri: str,
    reporter: Actor,
    group: Actor,
    object_uris: list[str],
    comment: str | None,
) -> Flag | None:
    """Store a report once (by its activity id); None if it was already stored."""
    if (await session.execute(select(Flag.id).where(Flag.uri == uri))).first():
        return None
    target = (
        await session.execute(
            select(Actor.id).where(Actor.uri.in_(object_uris), Actor.type != "Group")
        )
    ).scalar()
    row = Flag(uri=uri, reporter_id=reporter.id, coop_actor_id=group.id,
               target_actor_id=target, object_uris=orjson.dumps(object_uris).decode(),
               comment=comment, state="open")
    session.add(row)
    await session.flush()
    return row


async def flag(
    ctx: Context,
    session: AsyncSession,
    reporter: Actor,
    group: Actor,
    object_uris: list[str],
    comment: str | None = None,
) -> Flag | None:
    """A local member reports posts or accounts of a cooperative to its moderators.
    Local cooperative: stored and forwarded (returns the row); remote: `Flag` sent to
    the group's inbox (returns None)."""
    if group.type != "Group" or group.deleted_at is not None:
        raise ModerationError("reports go to a cooperative")
    uris, text = _clean(object_uris, comment)
    uri = ctx.uris.activity()
    if not group.local:
        doc = flag_document(uri, reporter.uri, uris, text, [group.uri], group.uri)
        await publish(ctx, session, reporter, doc, recipients=[group], public=False)
        return None
    row = await store_flag(session, uri, reporter, group, uris, text)
    assert row is not None
    await forward_flag(ctx, session, group, row)
    return row


async def _may_moderate(
    ctx: Context, session: AsyncSession, group: Actor, moderator: Actor
) -> bool:
    if moderator.id == group.id or not moderator.local:
        return False
    try:
        return await is_group_moderator(ctx, session, group, moderator.uri)
    except ModeratorsUnavailable as e:
        raise ModerationError("the cooperative's moderators cannot be checked now") from e


async def list_flags(
    ctx: Context, session: AsyncSession, moderator: Actor, group: Actor, *,
    state: str | None = "open",
) -> list[Flag]:
    """Reports about `group` that `moderator` may see: a local moderator of a local
    cooperative, or of a remote one (reports forwarded to them), newest first."""
    if not await _may_moderate(ctx, session, group, moderator):
        raise ModerationError("only the cooperative's moderators see its reports")
    q = select(Flag).where(Flag.coop_actor_id == group.id)
    if state is not None:
        q = q.where(Flag.state == state)
    return list((await session.execute(q.order_by(Flag.id.desc()))).scalars())


async def resolve_flag(
    ctx: Context, session: AsyncSession, moderator: Actor, group: Actor, flag_id: int
) -> Flag:
    """A moderator closes a report."""
    if not await _may_moderate(ctx, session, group, moderator):
        raise ModerationError("only the cooperative's moderators handle its reports")
    q = select(Flag).where(Flag.id == flag_id, Flag.coop_actor_id == group.id)
    row = (await session.execute(q)).scalar()
    if row is None:
        raise ModerationError("no such report")
    row.state = "resolved"
    return row


async def group_of_objects(session: AsyncSession, uris: list[str]) -> Actor | None:
    """The cooperative (local first) that the reported objects were posted into."""
    q = (
        select(Actor)
        .join(Object, Object.group_id == Actor.id)
        .where(Object.uri.in_(uris), Actor.type == "Group")
        .order_by(Actor.local.desc())
    )
    return (await session.execute(q)).scalars().first()
