"""Who may follow (join) what: the membership state machine, and its service API.

Members of a cooperative are its accepted followers, so a member on any Mastodon-compatible
server joins by following. Openness:
- `open`: a Follow or Join is accepted at once;
- `moderated` (and every private cooperative): the request stays pending until a moderator
  approves it (`Accept`) or rejects it (`Reject`);
- `invite_only`: a moderator invites (`Invite{actor, object: group, target}`); the invitee
  answers `Accept{Invite}` or `Join` (member) or `Reject{Invite}`; a Follow from someone not
  invited stays pending, for a moderator to decide.
A banned actor's request is rejected. Leaving is `Undo{Follow}` or `Leave`.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.local import ActorError, get_coop, get_user, local_actor_by_name
from t3r1_fed.context import Context
from t3r1_fed.coops.access import is_banned, is_member
from t3r1_fed.coops.roles import coop_of, require_moderator
from t3r1_fed.db.models import Actor, Coop, Follow, InboxItem
from t3r1_fed.db.models_coops import Invite
from t3r1_fed.federation.hosts import host_of
from t3r1_fed.outbox.publish import publish


class MembershipError(ActorError):
    """A membership action that cannot be done; the message says why."""


async def pending_invite(session: AsyncSession, group_id: int, actor_id: int) -> Invite | None:
    q = select(Invite).where(
        Invite.coop_actor_id == group_id, Invite.invitee_id == actor_id, Invite.state == "pending"
    )
    return (await session.execute(q)).scalar()


async def decide_follow(session: AsyncSession, target: Actor, follower: Actor) -> str:
    """'accepted', 'pending' or 'rejected' for a new Follow (or Join) of local `target`.

    An invited actor's request to an invite-only cooperative consumes the invitation.
    """
    if target.type == "Group":
        coop = (await session.execute(select(Coop).where(Coop.actor_id == target.id))).scalar()
        if coop is None or await is_banned(session, target.id, follower.id):
            return "rejected"
        invite = await pending_invite(session, target.id, follower.id)
        if invite is not None:
            invite.state = "accepted"
            return "accepted"
        if coop.openness == "open" and not coop.private:
            return "accepted"
        return "pending"
    return "pending" if target.manually_approves_followers else "accepted"


# ---- actors by name -----------------------------------------------------------------------


async def user_actor(session: AsyncSession, username: str) -> Actor:
    user = await get_user(session, username)
    return (await session.execute(select(Actor).where(Actor.id == user.actor_id))).scalar_one()


async def group_actor(session: AsyncSession, name: str) -> Actor:
    _, group = await get_coop(session, name)
    return group


async def find_actor(ctx: Context, session: AsyncSession, target: str) -> Actor:
    """An actor from a local username, `name@host`, `@name@host` or an actor URL."""
    target = target.strip()
    if target.startswith(("http://", "https://")) and ctx.uris.is_local(target):
        q = select(Actor).where(Actor.uri == target, Actor.deleted_at.is_(None))
        found = (await session.execute(q)).scalar()
        if found is None:
            raise MembershipError(f"no local actor {target}")
        return found
    name, _, host = target.lstrip("@").partition("@")
    if not target.startswith(("http://", "https://")) and (
        not host or host.lower() == ctx.settings.domain.lower()
    ):
        local = await local_actor_by_name(session, ctx.settings.domain, name)
        if local is None:
            raise MembershipError(f"no local account {name!r}")
        return local
    from t3r1_fed.actors.follows import resolve_target

    return await resolve_target(ctx, session, target)


# ---- requests: list, approve, reject ------------------------------------------------------


async def _follow_row(session: AsyncSession, group: Actor, actor: Actor) -> Follow | None:
    q = select(Follow).where(Follow.followee_id == group.id, Follow.follower_id == actor.id)
    return (await session.execute(q)).scalar()


async def pending_requests(session: AsyncSession, group: Actor) -> list[tuple[Follow, Actor]]:
    """Pending membership requests of a local cooperative, oldest first."""
    q = (
        select(Follow, Actor)
        .join(Actor, Actor.id == Follow.follower_id)
        .where(Follow.followee_id == group.id, Follow.state == "pending")
        .order_by(Follow.id)
    )
    return [(f, a) for f, a in (await session.execute(q)).all()]


async def request_kind(session: AsyncSession, follow_uri: str) -> str:
    """'Join' if the request arrived as a Join, else 'Follow' (what Accept/Reject echo)."""
    body = (
        await session.execute(select(InboxItem.body).where(InboxItem.activity_uri == follow_uri))
    ).scalar()
    if body:
        try:
            if orjson.loads(body).get("type") == "Join":
                return "Join"
        except (orjson.JSONDecodeError, AttributeError):
            pass
    return "Follow"


async def answer_request(
    ctx: Context, session: AsyncSession, group: Actor, follower: Actor, follow: Follow, kind: str
) -> None:
    """Send `Accept` or `Reject` of `follow` to a remote follower (echoing Follow or Join)."""
    if follower.local:
        return
    activity: dict[str, Any] = {
        "id": ctx.uris.activity(),
        "type": kind,
        "actor": group.uri,
        "object": {
            "id": follow.uri,
            "type": await request_kind(session, follow.uri),
            "actor": follower.uri,
            "object": group.uri,
        },
        "to": [follower.uri],
    }
    await publish(ctx, session, group, activity, recipients=[follower], public=False)


async def approve(
    ctx: Context, session: AsyncSession, moderator: Actor, group: Actor, follower: Actor
) -> Follow:
    """A moderator accepts a pending request: the follower becomes a member."""
    await coop_of(session, group)
    await require_moderator(session, group, moderator)
    follow = await _follow_row(session, group, follower)
    if follow is None or follow.state != "pending":
        raise MembershipError("no pending request from this actor")
    follow.state = "accepted"
    invite = await pending_invite(session, group.id, follower.id)
    if invite is not None:
        invite.state = "accepted"
    await answer_request(ctx, session, group, follower, follow, "Accept")
    return follow


async def reject(
    ctx: Context, session: AsyncSession, moderator: Actor, group: Actor, follower: Actor
) -> None:
    """A moderator refuses a pending request (Reject to a remote requester)."""
    await coop_of(session, group)
    await require_moderator(session, group, moderator)
    follow = await _follow_row(session, group, follower)
    if follow is None or follow.state != "pending":
        raise MembershipError("no pending request from this actor")
    await session.delete(follow)
    await answer_request(ctx, session, group, follower, follow, "Reject")


# ---- local members joining and leaving ------------------------------------------------------


async def join(ctx: Context, session: AsyncSession, member: Actor, group: Actor) -> Follow:
    """A local member asks to join a cooperative (local: no HTTP; remote: a Follow)."""
    if not group.local:
        from t3r1_fed.actors.follows import follow as follow_remote

        user = await user_of(session, member)
        return await follow_remote(ctx, session, user, group.uri)
    await coop_of(session, group)
    existing = await _follow_row(session, group, member)
    if existing is not None:
        return existing
    state = await decide_follow(session, group, member)
    if state == "rejected":
        raise MembershipError("this cooperative does not accept you as a member")
    f = Follow(uri=ctx.uris.activity(), follower_id=member.id, followee_id=group.id, state=state)
    session.add(f)
    await session.flush()
    return f


async def leave(ctx: Context, session: AsyncSession, member: Actor, group: Actor) -> None:
    """A local member leaves a cooperative (or withdraws a pending request)."""
    if not group.local:
        from t3r1_fed.actors.follows import unfollow

        await unfollow(ctx, session, await user_of(session, member), group.uri)
        return
    follow = await _follow_row(session, group, member)
    if follow is None:
        raise MembershipError("not a member of this cooperative")
    await session.delete(follow)


async def user_of(session: AsyncSession, actor: Actor) -> str:
    from t3r1_fed.db.models import User

    name = (await session.execute(select(User.username).where(User.actor_id == actor.id))).scalar()
    if name is None:
        raise MembershipError("not a local account")
    return name


# ---- invitations ----------------------------------------------------------------------------


def invite_document(invite_uri: str, inviter: str, group: str, invitee: str) -> dict[str, Any]:
    return {"id": invite_uri, "type": "Invite", "actor": inviter, "object": group,
            "target": invitee}


async def invite(
    ctx: Context, session: AsyncSession, inviter: Actor, group: Actor, invitee: Actor
) -> Invite:
    """A moderator invites `invitee`: recorded, and sent as `Invite` to a remote invitee.

    If the invitee already asked to join, the invitation approves the request.
    """
    await coop_of(session, group)
    await require_moderator(session, group, inviter)
    if invitee.type == "Group" or invitee.type == "Application":
        raise MembershipError("only people can be invited")
    if await is_banned(session, group.id, invitee.id):
        raise MembershipError("this actor is banned from the cooperative")
    if await is_member(session, group.id, invitee.id):
        raise MembershipError("already a member")
    row = (
        await session.execute(
            select(Invite).where(Invite.coop_actor_id == group.id, Invite.invitee_id == invitee.id)
        )
    ).scalar()
    if row is None:
        row = Invite(uri=ctx.uris.activity(), coop_actor_id=group.id, inviter_id=inviter.id,
                     invitee_id=invitee.id, state="pending")
        session.add(row)
    else:
        row.uri, row.inviter_id, row.state = ctx.uris.activity(), inviter.id, "pending"
    await session.flush()
    follow = await _follow_row(session, group, invitee)
    if follow is not None and follow.state == "pending":
        await approve(ctx, session, inviter, group, invitee)
        return row
    if not invitee.local:
        doc = {**invite_document(row.uri, inviter.uri, group.uri, invitee.uri),
               "to": [invitee.uri]}
        await publish(ctx, session, inviter, doc, recipients=[invitee], public=False)
    return row


async def invitations(session: AsyncSession, member: Actor) -> list[tuple[Invite, Actor]]:
    """Pending invitations received by a local member, with the inviting cooperative."""
    q = (
        select(Invite, Actor)
        .join(Actor, Actor.id == Invite.coop_actor_id)
        .where(Invite.invitee_id == member.id, Invite.state == "pending")
        .order_by(Invite.id)
    )
    return [(i, a) for i, a in (await session.execute(q)).all()]


async def answer_invite(
    ctx: Context, session: AsyncSession, member: Actor, group: Actor, *, accept: bool
) -> Invite:
    """A local member accepts or refuses an invitation (to a local or remote cooperative).

    Remote: sends `Accept{Invite}` (and keeps a pending follow until the group confirms) or
    `Reject{Invite}`.
    """
    inv = await pending_invite(session, group.id, member.id)
    if inv is None:
        raise MembershipError("no pending invitation from this cooperative")
    if group.local:
        if not accept:
            inv.state = "rejected"
            return inv
        follow = await _follow_row(session, group, member)
        if follow is None:
            await join(ctx, session, member, group)  # decide_follow consumes the invitation
        else:
            follow.state = "accepted"
        inv.state = "accepted"
        return inv
    inviter = (await session.execute(select(Actor).where(Actor.id == inv.inviter_id))).scalar_one()
    answer_id = ctx.uris.activity()
    activity = {
        "id": answer_id,
        "type": "Accept" if accept else "Reject",
        "actor": member.uri,
        "object": invite_document(inv.uri, inviter.uri, group.uri, member.uri),
        "to": [group.uri],
    }
    inv.state = "accepted" if accept else "rejected"
    if accept and await _follow_row(session, group, member) is None:
        session.add(Follow(uri=answer_id, follower_id=member.id, followee_id=group.id,
                           state="pending"))
    await publish(ctx, session, member, activity, recipients=[group, inviter], public=False)
    return inv


def same_host(a: str, b: str) -> bool:
    try:
        return host_of(a) == host_of(b)
    except ValueError:
        return False
