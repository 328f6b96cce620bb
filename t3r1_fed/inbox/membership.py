"""Membership activities beyond Follow/Undo (inbox/social.py): Join, Leave, Invite, and
the answers to an invitation (Accept{Invite}, Reject{Invite}).

Join and Leave also serve event RSVPs (FEP-8a8e): these handlers take those whose object
is one of our cooperatives and hand any other to the handler registered for
(Join|Leave, Event), if a feature registered one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from t3r1_fed.coops.membership import (
    answer_request,
    decide_follow,
    pending_invite,
    same_host,
)
from t3r1_fed.db.models import Actor, Follow
from t3r1_fed.db.models_coops import Invite
from t3r1_fed.inbox.dispatch import ANY, TABLE, Handler, Ignored, Inbound, handles
from t3r1_fed.inbox.social import local_actor, remote_actor
from t3r1_fed.outbox.publish import publish


async def _local_group(inb: Inbound) -> Actor | None:
    target = await local_actor(inb.session, inb.act.object_id)
    return target if target is not None and target.type == "Group" else None


async def _other(inb: Inbound, kind: str, mine: Handler) -> str:
    """Not a cooperative: the handler another feature registered for (kind, Event)."""
    fn = TABLE.get((kind, "Event"))
    if fn is None or fn is mine:
        raise Ignored(f"{kind} of something that is not a cooperative here")
    return await fn(inb)


@handles("Join", "Group", ANY)
async def on_join(inb: Inbound) -> str:
    group = await _local_group(inb)
    if group is None:
        return await _other(inb, "Join", on_join)
    member = await remote_actor(inb)
    follow = (
        await inb.session.execute(
            select(Follow).where(Follow.follower_id == member.id, Follow.followee_id == group.id)
        )
    ).scalar()
    if follow is not None:
        follow.uri = inb.act.id  # Accept must echo the newest request
        if follow.state == "accepted":
            await answer_request(inb.ctx, inb.session, group, member, follow, "Accept")
            return "join repeated: accepted again"
        if await pending_invite(inb.session, group.id, member.id) is None:
            return "join repeated: still pending"
        await decide_follow(inb.session, group, member)  # consumes the invitation
        follow.state = "accepted"
        await answer_request(inb.ctx, inb.session, group, member, follow, "Accept")
        return "join of an invited actor: accepted"
    state = await decide_follow(inb.session, group, member)
    follow = Follow(uri=inb.act.id, follower_id=member.id, followee_id=group.id, state=state)
    if state == "rejected":
        await answer_request(inb.ctx, inb.session, group, member, follow, "Reject")
        return "join rejected"
    inb.session.add(follow)
    await inb.session.flush()
    if state == "accepted":
        await answer_request(inb.ctx, inb.session, group, member, follow, "Accept")
    return f"join {state}"


@handles("Leave", "Group", ANY)
async def on_leave(inb: Inbound) -> str:
    group = await _local_group(inb)
    if group is None:
        return await _other(inb, "Leave", on_leave)
    actor = (await inb.session.execute(select(Actor).where(Actor.uri == inb.act.actor))).scalar()
    if actor is None:
        raise Ignored("leave from an unknown actor")
    res = await inb.session.execute(
        delete(Follow).where(Follow.follower_id == actor.id, Follow.followee_id == group.id)
    )
    if not res.rowcount:  # type: ignore[attr-defined]
        raise Ignored("leave from a non-member")
    return "left"


@handles("Invite", ANY)
async def on_invite(inb: Inbound) -> str:
    """A remote cooperative invites one of our members: kept for them to answer."""
    act = inb.act
    invitee = await local_actor(inb.session, act.target)
    if invitee is None or invitee.type != "Person":
        raise Ignored("invite of an unknown local member")
    group_uri = act.object_id
    if not group_uri or not same_host(group_uri, act.actor):
        raise Ignored("invite into a group of another host")
    inviter = await remote_actor(inb)
    from t3r1_fed.federation.resolver import ResolveError, get_actor

    try:
        group = await get_actor(inb.ctx, inb.session, group_uri)
    except ResolveError as e:
        raise Ignored(f"group unavailable: {e}") from e
    if group.type != "Group":
        raise Ignored("invite into something that is not a group")
    row = (
        await inb.session.execute(
            select(Invite).where(Invite.coop_actor_id == group.id, Invite.invitee_id == invitee.id)
        )
    ).scalar()
    if row is None:
        inb.session.add(Invite(uri=act.id, coop_actor_id=group.id, inviter_id=inviter.id,
                               invitee_id=invitee.id, state="pending"))
    else:
        row.uri, row.inviter_id, row.state = act.id, inviter.id, "pending"
    return "invitation stored"


async def _our_invite(inb: Inbound) -> Invite | None:
    iid = inb.act.object_id
    if not iid or not inb.ctx.uris.is_local(iid):
        return None
    return (await inb.session.execute(select(Invite).where(Invite.uri == iid))).scalar()


async def _answer_invite(inb: Inbound, accepted: bool) -> str:
    inv = await _our_invite(inb)
    if inv is None:
        raise Ignored("answer to an unknown invitation")
    invitee = (await inb.session.execute(select(Actor).where(Actor.id == inv.invitee_id))).scalar()
    if invitee is None or invitee.uri != inb.act.actor:
        raise Ignored("answer to an invitation by someone else")
    if inv.state != "pending":
        raise Ignored(f"invitation already {inv.state}")
    group = (await inb.session.execute(select(Actor).where(Actor.id == inv.coop_actor_id))).scalar()
    if group is None or group.deleted_at is not None:
        raise Ignored("invitation into a cooperative that is gone")
    if not accepted:
        inv.state = "rejected"
        return "invitation refused"
    # Accept{Invite} is a request to join that the invitation pre-approves.
    follow = (
        await inb.session.execute(
            select(Follow).where(Follow.follower_id == invitee.id, Follow.followee_id == group.id)
        )
    ).scalar()
    state = await decide_follow(inb.session, group, invitee)
    if follow is None:
        follow = Follow(uri=inb.act.id, follower_id=invitee.id, followee_id=group.id, state=state)
        if state != "rejected":
            inb.session.add(follow)
    else:
        follow.uri = inb.act.id
        follow.state = "accepted" if state != "rejected" else follow.state
    await inb.session.flush()
    confirm: dict[str, Any] = {
        "id": inb.ctx.uris.activity(),
        "type": "Accept" if state != "rejected" else "Reject",
        "actor": group.uri,
        # Echo the invitee's answer: their server files the membership under its id.
        "object": {"id": inb.act.id, "type": "Accept", "actor": invitee.uri, "object": inv.uri},
        "to": [invitee.uri],
    }
    await publish(inb.ctx, inb.session, group, confirm, recipients=[invitee], public=False)
    return "invitation accepted: member" if state != "rejected" else "invitation of a banned actor"


@handles("Accept", "Invite")
async def on_accept_invite(inb: Inbound) -> str:
    return await _answer_invite(inb, True)


@handles("Reject", "Invite")
async def on_reject_invite(inb: Inbound) -> str:
    return await _answer_invite(inb, False)

