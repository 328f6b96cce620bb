"""Local action → stored activity → one delivery row per distinct inbox, in one transaction.

The body is serialised and its digest computed here, once: the delivery worker only signs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from sqlalchemy import event, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.db.models import Activity, Actor, Delivery, Follow, Host, utcnow
from t3r1_fed.federation.hosts import host_of
from t3r1_fed.federation.httpsig import body_digest
from t3r1_fed.vocab.context import AS_CONTEXT


def inboxes_for(recipients: Iterable[Actor]) -> dict[str, str]:
    """Remote inbox URL → host, the shared inbox used whenever the actor has one."""
    out: dict[str, str] = {}
    for actor in recipients:
        if actor.local or actor.deleted_at is not None:
            continue
        inbox = actor.shared_inbox or actor.inbox
        if inbox and inbox not in out:
            out[inbox] = host_of(inbox)
    return out


async def followers_of(session: AsyncSession, actor_id: int) -> list[Actor]:
    q = (
        select(Actor)
        .join(Follow, Follow.follower_id == Actor.id)
        .where(Follow.followee_id == actor_id, Follow.state == "accepted")
    )
    return list((await session.execute(q)).scalars())


def wake_after_commit(ctx: Context, session: AsyncSession) -> None:
    """Wake this process's delivery worker once the transaction is committed."""

    def _wake(_session: Any) -> None:
        ctx.wake_deliveries.set()

    if not session.info.get("wake_registered"):
        session.info["wake_registered"] = True
        event.listen(session.sync_session, "after_commit", _wake, once=True)

        def _reset(_session: Any) -> None:
            session.info.pop("wake_registered", None)

        event.listen(session.sync_session, "after_commit", _reset, once=True)
        event.listen(session.sync_session, "after_rollback", _reset, once=True)


def create_activity(
    ctx: Context, author: Actor, doc: dict[str, Any], *, to: list[str], cc: list[str],
    published: str, audience: str | None = None,
) -> dict[str, Any]:
    """The `Create` of a new object `doc` by `author` (a fresh activity id)."""
    create: dict[str, Any] = {
        "id": ctx.uris.activity(),
        "type": "Create",
        "actor": author.uri,
        "object": doc,
        "to": to,
        "cc": cc,
    }
    if audience is not None:
        create["audience"] = audience
    create["published"] = published
    return create


async def publish(
    ctx: Context,
    session: AsyncSession,
    actor: Actor,
    activity: dict[str, Any],
    *,
    recipients: Iterable[Actor] = (),
    inboxes: Iterable[str] = (),
    public: bool = True,
) -> Activity:
    """Store `activity` (whose `id` we minted) and queue it for every recipient's inbox."""
    if "@context" not in activity:
        activity = {"@context": AS_CONTEXT, **activity}
    body = orjson.dumps(activity).decode()
    obj = activity.get("object")
    obj_uri = obj if isinstance(obj, str) else (obj.get("id") if isinstance(obj, dict) else None)
    row = Activity(
        uri=activity["id"],
        actor_id=actor.id,
        type=activity["type"],
        object_uri=obj_uri,
        public=public,
        body=body,
        digest=body_digest(body.encode()),
    )
    session.add(row)
    await session.flush()
    targets = inboxes_for(recipients)
    for inbox in inboxes:
        if not ctx.uris.is_local(inbox):
            targets.setdefault(inbox, host_of(inbox))
    if targets:
        unavailable = set(
            (
                await session.execute(
                    select(Host.domain).where(
                        Host.domain.in_(set(targets.values())), Host.unavailable
                    )
                )
            ).scalars()
        )
        now = utcnow()
        rows = [
            {
                "activity_id": row.id,
                "inbox": inbox,
                "host": host,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for inbox, host in targets.items()
            if host not in unavailable
        ]
        if rows:
            await session.execute(insert(Delivery), rows)
            wake_after_commit(ctx, session)
    return row
