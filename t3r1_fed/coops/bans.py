"""Banning an actor from a cooperative, and lifting the ban.

A ban (Lemmy's shape, samples/lemmy/activities/block): the moderator's
`Block{object: actor, target: group, summary: reason, endTime, removeData: false}`, sent to
the banned actor and announced by the group to its followers (FEP-1b12), plus a
`Reject{Follow}` to the banned member so their server drops the membership. The ban is a
`coop_bans` row; while it lasts the actor's Follow/Join is rejected and their posts into
the cooperative are refused (coops/posting.py). Unban: `Undo{Block}`, announced the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.coops.membership import MembershipError, answer_request
from t3r1_fed.coops.redistribute import now_iso
from t3r1_fed.coops.roles import coop_of, require_moderator, staff_role
from t3r1_fed.db.models import Activity, Actor, Coop, Follow
from t3r1_fed.db.models_coops import CoopBan, Invite
from t3r1_fed.outbox.publish import followers_of, publish
from t3r1_fed.vocab.context import AS_PUBLIC


def _addressing(coop: Coop, group: Actor) -> dict[str, Any]:
    if coop.private:
        return {"to": [group.followers_url or group.uri], "cc": [group.uri],
                "audience": group.uri}
    return {"to": [AS_PUBLIC], "cc": [group.uri], "audience": group.uri}


async def _announce(
    ctx: Context, session: AsyncSession, group: Actor, coop: Coop, inner: dict[str, Any]
) -> None:
    """The group relays a moderation activity to its followers (FEP-1b12)."""
    announce = {
        "id": ctx.uris.activity(),
        "type": "Announce",
        "actor": group.uri,
        "object": inner,
        "published": now_iso(),
        **_addressing(coop, group),
    }
    if not coop.private:
        announce["cc"] = [group.followers_url or group.uri]
    recipients = await followers_of(session, group.id)
    await publish(ctx, session, group, announce, recipients=recipients, public=not coop.private)


def _end_time(until: datetime | None) -> str | None:
    if until is None:
        return None
    if until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    return until.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def ban(
    ctx: Context,
    session: AsyncSession,
    moderator: Actor,
    group: Actor,
    target: Actor,
    reason: str | None,
    until: datetime | None = None,
) -> CoopBan:
    """A moderator bans `target` from `group` (until `until`, or for good)."""
    coop = await coop_of(session, group)
    await require_moderator(session, group, moderator)
    if target.id in (moderator.id, group.id):
        raise MembershipError("cannot ban oneself or the cooperative")
    if await staff_role(session, group.id, target.id) is not None:
        raise MembershipError("remove this actor's role before banning them")
    if until is not None:
        until = until if until.tzinfo else until.replace(tzinfo=UTC)
        if until <= datetime.now(UTC):
            raise MembershipError("the ban's end is in the past")
    reason = (reason or "").strip()[:500] or None
    block: dict[str, Any] = {
        "id": ctx.uris.activity(),
        "type": "Block",
        "actor": moderator.uri if moderator.local else group.uri,
        "object": target.uri,
        "target": group.uri,
        "removeData": False,
        **_addressing(coop, group),
    }
    if reason:
        block["summary"] = reason
    if until is not None:
        block["endTime"] = _end_time(until)
    row = (
        await session.execute(
            select(CoopBan).where(CoopBan.coop_actor_id == group.id, CoopBan.actor_id == target.id)
        )
    ).scalar()
    if row is None:
        row = CoopBan(coop_actor_id=group.id, actor_id=target.id)
        session.add(row)
    row.uri, row.reason, row.expires_at = block["id"], reason, until
    follow = (
        await session.execute(
            select(Follow).where(Follow.followee_id == group.id, Follow.follower_id == target.id)
        )
    ).scalar()
    if follow is not None:
        await session.delete(follow)
        await answer_request(ctx, session, group, target, follow, "Reject")
    for inv in (
        await session.execute(
            select(Invite).where(Invite.coop_actor_id == group.id, Invite.invitee_id == target.id)
        )
    ).scalars():
        inv.state = "rejected"
    await session.flush()
    blocker = moderator if moderator.local else group
    extra = [] if target.local else [target]
    await publish(ctx, session, blocker, {**block}, recipients=extra, public=not coop.private)
    await _announce(ctx, session, group, coop, block)
    return row


async def unban(
    ctx: Context, session: AsyncSession, moderator: Actor, group: Actor, target: Actor
) -> None:
    """A moderator lifts a ban: `Undo{Block}`, announced by the group."""
    coop = await coop_of(session, group)
    await require_moderator(session, group, moderator)
    row = (
        await session.execute(
            select(CoopBan).where(CoopBan.coop_actor_id == group.id, CoopBan.actor_id == target.id)
        )
    ).scalar()
    if row is None:
        raise MembershipError("this actor is not banned")
    block: dict[str, Any] | None = None
    if row.uri:
        q = select(Activity.body).where(Activity.uri == row.uri)
        body = (await session.execute(q)).scalar()
        if body:
            block = {k: v for k, v in orjson.loads(body).items() if k != "@context"}
    if block is None:
        block = {"id": row.uri or ctx.uris.activity(), "type": "Block", "actor": group.uri,
                 "object": target.uri, "target": group.uri}
    await session.delete(row)
    blocker = moderator if moderator.local else group
    undo = {
        "id": ctx.uris.activity(),
        "type": "Undo",
        "actor": blocker.uri,
        "object": {**block, "actor": blocker.uri},
        **_addressing(coop, group),
    }
    extra = [] if target.local else [target]
    await publish(ctx, session, blocker, undo, recipients=extra, public=not coop.private)
    await _announce(ctx, session, group, coop, undo)


async def bans(session: AsyncSession, group: Actor) -> list[tuple[CoopBan, Actor]]:
    q = (
        select(CoopBan, Actor)
        .join(Actor, Actor.id == CoopBan.actor_id)
        .where(CoopBan.coop_actor_id == group.id)
        .order_by(CoopBan.created_at)
    )
    return [(b, a) for b, a in (await session.execute(q)).all()]
