"""`t3r1 admin` verbs for membership, roles and bans (they call coops/membership.py,
coops/roles.py and coops/bans.py, then deliver what they queued, like `admin post`)."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.coops.membership import MembershipError, find_actor, group_actor, user_actor
from t3r1_fed.db.models import Actor, CoopRole


async def _acting(session: AsyncSession, group: Actor, username: str | None) -> Actor:
    """The member acting (--by), or the cooperative's first admin when none is given."""
    if username:
        return await user_actor(session, username)
    admin = (
        await session.execute(
            select(Actor)
            .join(CoopRole, CoopRole.actor_id == Actor.id)
            .where(CoopRole.coop_actor_id == group.id, CoopRole.role == "admin")
            .order_by(CoopRole.created_at)
        )
    ).scalar()
    if admin is None:
        raise MembershipError("this cooperative has no admin: use --by")
    return admin


def _run(args: argparse.Namespace, fn: Any, *, deliver: bool = True) -> Any:
    from t3r1_fed.cli import _run_then_deliver, _settings, _with_session

    runner = _run_then_deliver if deliver else _with_session
    return runner(_settings(args), fn)


async def cmd_requests(args: argparse.Namespace) -> str:
    from t3r1_fed.coops.membership import pending_requests

    async def go(ctx: Context, session: AsyncSession) -> str:
        rows = await pending_requests(session, await group_actor(session, args.coop))
        lines = [f"{a.uri}\t{f.created_at:%Y-%m-%d %H:%M}" for f, a in rows]
        return "\n".join(lines) or "no pending request"

    return await _run(args, go, deliver=False)  # type: ignore[no-any-return]


async def cmd_answer(args: argparse.Namespace) -> str:
    from t3r1_fed.coops.membership import approve, reject

    async def go(ctx: Context, session: AsyncSession) -> str:
        group = await group_actor(session, args.coop)
        mod = await _acting(session, group, args.by)
        who = await find_actor(ctx, session, args.actor)
        if args.admin_cmd == "approve":
            await approve(ctx, session, mod, group, who)
            return f"approved: {who.uri}"
        await reject(ctx, session, mod, group, who)
        return f"rejected: {who.uri}"

    return await _run(args, go)  # type: ignore[no-any-return]


async def cmd_set_role(args: argparse.Namespace) -> str:
    from t3r1_fed.coops.roles import set_role

    async def go(ctx: Context, session: AsyncSession) -> str:
        group = await group_actor(session, args.coop)
        who = await find_actor(ctx, session, args.target)
        role = await set_role(ctx, session, await user_actor(session, args.by), group, who,
                              args.role)
        return f"{who.uri} is now {role} of {group.uri}"

    return await _run(args, go, deliver=False)  # type: ignore[no-any-return]


async def cmd_invite(args: argparse.Namespace) -> str:
    from t3r1_fed.coops.membership import invite

    async def go(ctx: Context, session: AsyncSession) -> str:
        group = await group_actor(session, args.coop)
        who = await find_actor(ctx, session, args.target)
        await invite(ctx, session, await user_actor(session, args.by), group, who)
        return f"invited: {who.uri}"

    return await _run(args, go)  # type: ignore[no-any-return]


async def cmd_ban(args: argparse.Namespace) -> str:
    from t3r1_fed.coops.bans import ban, unban

    until = None
    if getattr(args, "until", None):
        try:
            until = datetime.fromisoformat(args.until)
        except ValueError as e:
            raise MembershipError(f"--until: not an ISO 8601 date: {args.until}") from e

    async def go(ctx: Context, session: AsyncSession) -> str:
        group = await group_actor(session, args.coop)
        who = await find_actor(ctx, session, args.target)
        mod = await user_actor(session, args.by)
        if args.admin_cmd == "unban":
            await unban(ctx, session, mod, group, who)
            return f"unbanned: {who.uri}"
        await ban(ctx, session, mod, group, who, args.reason, until)
        return f"banned: {who.uri}" + (f" until {until.isoformat()}" if until else "")

    return await _run(args, go)  # type: ignore[no-any-return]


async def cmd_invite_answer(args: argparse.Namespace) -> str:
    from t3r1_fed.coops.membership import answer_invite

    async def go(ctx: Context, session: AsyncSession) -> str:
        me = await user_actor(session, args.username)
        group = await find_actor(ctx, session, args.coop)
        accept = args.admin_cmd == "accept-invite"
        await answer_invite(ctx, session, me, group, accept=accept)
        return ("accepted" if accept else "refused") + f" the invitation of {group.uri}"

    return await _run(args, go)  # type: ignore[no-any-return]


def add_admin_commands(admin: Any) -> None:
    """Add the membership verbs to the `t3r1 admin` sub-parsers."""
    s = admin.add_parser("requests", help="list a cooperative's pending membership requests")
    s.add_argument("coop")
    s.set_defaults(fn=cmd_requests)
    for verb, text in (("approve", "accept"), ("reject", "refuse")):
        s = admin.add_parser(verb, help=f"{text} a pending membership request")
        s.add_argument("coop")
        s.add_argument("actor", help="name@host, actor URL or local username")
        s.add_argument("--by", default=None, help="moderator acting (default: first admin)")
        s.set_defaults(fn=cmd_answer)
    s = admin.add_parser("set-role", help="give a member a role (admins only)")
    s.add_argument("coop")
    s.add_argument("target", help="local username, name@host or actor URL")
    s.add_argument("role", choices=["admin", "moderator", "member"])
    s.add_argument("--by", required=True, help="admin of the cooperative")
    s.set_defaults(fn=cmd_set_role)
    s = admin.add_parser("invite", help="invite someone into a cooperative")
    s.add_argument("coop")
    s.add_argument("target", help="local username, name@host or actor URL")
    s.add_argument("--by", required=True, help="moderator or admin inviting")
    s.set_defaults(fn=cmd_invite)
    s = admin.add_parser("ban", help="ban an actor from a cooperative")
    s.add_argument("coop")
    s.add_argument("target")
    s.add_argument("--by", required=True)
    s.add_argument("--reason", default=None)
    s.add_argument("--until", default=None, help="ISO 8601 end of the ban")
    s.set_defaults(fn=cmd_ban)
    s = admin.add_parser("unban", help="lift a ban")
    s.add_argument("coop")
    s.add_argument("target")
    s.add_argument("--by", required=True)
    s.set_defaults(fn=cmd_ban)
    for verb, text in (("accept-invite", "accept"), ("refuse-invite", "refuse")):
        s = admin.add_parser(verb, help=f"a member answers ({text}s) a cooperative's invitation")
        s.add_argument("username")
        s.add_argument("coop", help="local cooperative name, name@host or URL")
        s.set_defaults(fn=cmd_invite_answer)
