"""Follow, Accept, Reject, Undo and Like handlers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.db.models import Actor, Follow, Like, Object, Share
from t3r1_fed.federation.resolver import ResolveError, get_actor
from t3r1_fed.inbox.dispatch import ANY, TABLE, Ignored, Inbound, handles
from t3r1_fed.outbox.publish import publish
from t3r1_fed.vocab.normalize import id_of


async def local_actor(session: AsyncSession, uri: str | None) -> Actor | None:
    if uri is None:
        return None
    q = select(Actor).where(Actor.uri == uri, Actor.local.is_(True), Actor.deleted_at.is_(None))
    return (await session.execute(q)).scalar()


async def remote_actor(inb: Inbound) -> Actor:
    try:
        return await get_actor(inb.ctx, inb.session, inb.act.actor)
    except ResolveError as e:
        raise Ignored(f"actor unavailable: {e}") from e


def follow_echo(raw: Any, actor: str, obj: str) -> dict[str, Any]:
    """The Follow as we embed it in Accept/Reject (Mastodon matches on its id)."""
    fid = id_of(raw) or ""
    return {"id": fid, "type": "Follow", "actor": actor, "object": obj}


async def send_accept(
    ctx: Context,
    session: AsyncSession,
    target: Actor,
    follower: Actor,
    follow_uri: str,
    kind: str = "Accept",
) -> None:
    activity = {
        "id": ctx.uris.activity(),
        "type": kind,
        "actor": target.uri,
        "object": follow_echo(follow_uri, follower.uri, target.uri),
        "to": [follower.uri],
    }
    await publish(ctx, session, target, activity, recipients=[follower])


@handles("Follow")
async def on_follow(inb: Inbound) -> str:
    target = await local_actor(inb.session, inb.act.object_id)
    if target is None or target.type == "Application":
        raise Ignored("follow of an unknown local actor")
    follower = await remote_actor(inb)
    existing = (
        await inb.session.execute(
            select(Follow).where(Follow.follower_id == follower.id, Follow.followee_id == target.id)
        )
    ).scalar()
    if existing is not None:
        existing.uri = inb.act.id  # remember the newest Follow id: Accept must echo it
        if existing.state == "accepted":
            await send_accept(inb.ctx, inb.session, target, follower, inb.act.id)
            return "follow repeated: accepted again"
        return "follow repeated: still pending"
    from t3r1_fed.coops.membership import decide_follow

    state = await decide_follow(inb.session, target, follower)
    if state == "rejected":
        await send_accept(inb.ctx, inb.session, target, follower, inb.act.id, kind="Reject")
        return "follow rejected"
    inb.session.add(
        Follow(uri=inb.act.id, follower_id=follower.id, followee_id=target.id, state=state)
    )
    if state == "accepted":
        await send_accept(inb.ctx, inb.session, target, follower, inb.act.id)
    return f"follow {state}"


async def _our_follow(inb: Inbound) -> Follow | None:
    obj = inb.act.object
    fid = inb.act.object_id
    follow = None
    if fid:
        follow = (await inb.session.execute(select(Follow).where(Follow.uri == fid))).scalar()
    if follow is None and isinstance(obj, dict):
        me = await local_actor(inb.session, id_of(obj.get("actor")))
        them = (await inb.session.execute(select(Actor).where(Actor.uri == inb.act.actor))).scalar()
        if me is not None and them is not None:
            follow = (
                await inb.session.execute(
                    select(Follow).where(Follow.follower_id == me.id, Follow.followee_id == them.id)
                )
            ).scalar()
    if follow is None:
        return None
    followee = (
        await inb.session.execute(select(Actor.uri).where(Actor.id == follow.followee_id))
    ).scalar()
    if followee != inb.act.actor:
        raise Ignored("accept/reject from an actor that was not followed")
    return follow


async def _join_answer(inb: Inbound, reason: str) -> str:
    """Mobilizon answers a Join by its id only (`object: <join id>`): hand it to the
    (Accept|Reject, Join) handler a feature registered (meeting RSVPs), if any."""
    invite = TABLE.get((inb.act.type, "Invite"))  # an invitation answered by its id only
    if invite is not None and inb.act.object_id and not isinstance(inb.act.object, dict):
        from t3r1_fed.db.models_coops import Invite

        q = select(Invite.id).where(Invite.uri == inb.act.object_id)
        if (await inb.session.execute(q)).first() is not None:
            return await invite(inb)
    fn = TABLE.get((inb.act.type, "Join"))
    if fn is None or isinstance(inb.act.object, dict):
        raise Ignored(reason)
    return await fn(inb)


@handles("Accept", "Follow", ANY)
async def on_accept(inb: Inbound) -> str:
    follow = await _our_follow(inb)
    if follow is None:
        return await _join_answer(inb, "accept of an unknown follow")
    follow.state = "accepted"
    return "follow accepted"


@handles("Reject", "Follow", ANY)
async def on_reject(inb: Inbound) -> str:
    follow = await _our_follow(inb)
    if follow is None:
        return await _join_answer(inb, "reject of an unknown follow")
    await inb.session.delete(follow)
    return "follow rejected by remote"


@handles("Undo")
async def on_undo(inb: Inbound) -> str:
    act, session = inb.act, inb.session
    actor = (await session.execute(select(Actor).where(Actor.uri == act.actor))).scalar()
    if actor is None:
        raise Ignored("undo from an unknown actor")
    uri = act.object_id
    kind = act.object_type
    if kind in (None, "Follow"):
        q = delete(Follow).where(Follow.follower_id == actor.id)
        target = id_of(act.object.get("object")) if isinstance(act.object, dict) else None
        local = await local_actor(session, target)
        cond = Follow.uri == uri
        if local is not None:
            cond = cond | (Follow.followee_id == local.id)
        if (await session.execute(q.where(cond))).rowcount:  # type: ignore[attr-defined]
            return "unfollowed"
    if kind in (None, "Like"):
        res = await session.execute(delete(Like).where(Like.uri == uri, Like.actor_id == actor.id))
        if res.rowcount:  # type: ignore[attr-defined]
            return "like undone"
    if kind in (None, "Announce"):
        # Match the share by the Announce's id, or by what it announced: a group sends two
        # Announce forms of one post and we keep whichever arrived first.
        cond = Share.uri == uri
        boosted = id_of(act.object.get("object")) if isinstance(act.object, dict) else None
        if boosted:
            cond = cond | Share.object_id.in_(select(Object.id).where(Object.uri == boosted))
        res = await session.execute(delete(Share).where(cond, Share.actor_id == actor.id))
        if res.rowcount:  # type: ignore[attr-defined]
            return "announce undone"
    undo_join = TABLE.get(("Undo", "Join"))  # a meeting's Join undone by its id only
    if kind is None and undo_join is not None:
        return await undo_join(inb)
    raise Ignored("nothing to undo")


@handles("Like")
async def on_like(inb: Inbound) -> str:
    oid = inb.act.object_id
    if oid is None or not inb.ctx.uris.is_local(oid):
        raise Ignored("like of a remote object")
    obj = (await inb.session.execute(select(Object).where(Object.uri == oid))).scalar()
    if obj is None or obj.deleted_at is not None:
        raise Ignored("like of an unknown object")
    actor = await remote_actor(inb)
    exists = (
        await inb.session.execute(
            select(Like.id).where(Like.actor_id == actor.id, Like.object_id == obj.id)
        )
    ).first()
    if exists:
        return "like repeated"
    inb.session.add(Like(uri=inb.act.id, actor_id=actor.id, object_id=obj.id))
    return "liked"
