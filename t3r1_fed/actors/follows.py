"""Local members (and cooperatives) following remote actors: Follow and Undo(Follow)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.local import ActorError, get_user
from t3r1_fed.context import Context
from t3r1_fed.db.models import Actor, Follow
from t3r1_fed.federation.resolver import ResolveError, get_actor
from t3r1_fed.federation.webfinger import WebFingerError, resolve_acct
from t3r1_fed.outbox.publish import publish


async def resolve_target(ctx: Context, session: AsyncSession, target: str) -> Actor:
    """An actor from `name@host`, `@name@host` or an actor URL."""
    try:
        uri = (
            target
            if target.startswith(("http://", "https://"))
            else await resolve_acct(
                ctx.http, target, scheme="http" if ctx.settings.allow_http else "https"
            )
        )
        return await get_actor(ctx, session, uri)
    except (WebFingerError, ResolveError) as e:
        raise ActorError(str(e)) from e


async def follow(ctx: Context, session: AsyncSession, username: str, target: str) -> Follow:
    user = await get_user(session, username)
    me = (await session.execute(select(Actor).where(Actor.id == user.actor_id))).scalar_one()
    them = await resolve_target(ctx, session, target)
    if them.id == me.id:
        raise ActorError("cannot follow oneself")
    existing = (
        await session.execute(
            select(Follow).where(Follow.follower_id == me.id, Follow.followee_id == them.id)
        )
    ).scalar()
    if existing is not None:
        return existing
    if them.local:
        from t3r1_fed.coops.membership import decide_follow

        state = await decide_follow(session, them, me)
        if state == "rejected":
            raise ActorError("this cooperative does not accept followers")
        f = Follow(uri=ctx.uris.activity(), follower_id=me.id, followee_id=them.id, state=state)
        session.add(f)
        return f
    f = Follow(uri=ctx.uris.activity(), follower_id=me.id, followee_id=them.id, state="pending")
    session.add(f)
    await publish(
        ctx,
        session,
        me,
        {
            "id": f.uri,
            "type": "Follow",
            "actor": me.uri,
            "object": them.uri,
            "to": [them.uri],
        },
        recipients=[them],
    )
    return f


async def unfollow(ctx: Context, session: AsyncSession, username: str, target: str) -> None:
    user = await get_user(session, username)
    me = (await session.execute(select(Actor).where(Actor.id == user.actor_id))).scalar_one()
    them = await resolve_target(ctx, session, target)
    f = (
        await session.execute(
            select(Follow).where(Follow.follower_id == me.id, Follow.followee_id == them.id)
        )
    ).scalar()
    if f is None:
        raise ActorError("not following")
    await session.delete(f)
    if not them.local:
        await publish(
            ctx,
            session,
            me,
            {
                "id": ctx.uris.activity(),
                "type": "Undo",
                "actor": me.uri,
                "object": {"id": f.uri, "type": "Follow", "actor": me.uri, "object": them.uri},
                "to": [them.uri],
            },
            recipients=[them],
        )
