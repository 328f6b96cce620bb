"""Roles in a cooperative: admin, moderator, member.

`coop_roles` holds admins and moderators; a member is an accepted follower (so members on
any Mastodon-compatible server count). Only admins change roles, and a cooperative always
keeps at least one admin. The moderators collection (handlers/activitypub.py) publishes
the `coop_roles` rows.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.actors.local import ActorError
from t3r1_fed.context import Context
from t3r1_fed.coops.access import is_banned, is_member
from t3r1_fed.db.models import Actor, Coop, CoopRole

ROLES: Final = ("admin", "moderator", "member")
STAFF: Final = frozenset({"admin", "moderator"})


class RoleError(ActorError):
    """A role change (or a moderator-only action) that is not allowed; the message says why."""


async def coop_of(session: AsyncSession, group: Actor) -> Coop:
    """The local cooperative behind `group`, or RoleError."""
    coop = (await session.execute(select(Coop).where(Coop.actor_id == group.id))).scalar()
    if coop is None or not group.local or group.deleted_at is not None:
        raise RoleError(f"{group.uri} is not a cooperative of this instance")
    return coop


async def staff_role(session: AsyncSession, group_id: int, actor_id: int) -> str | None:
    """'admin' or 'moderator' from coop_roles, else None."""
    q = select(CoopRole.role).where(
        CoopRole.coop_actor_id == group_id, CoopRole.actor_id == actor_id
    )
    return (await session.execute(q)).scalar()


async def role_of(session: AsyncSession, group_id: int, actor_id: int) -> str | None:
    """'admin', 'moderator', 'member' or None (not a member)."""
    role = await staff_role(session, group_id, actor_id)
    if role is not None:
        return role
    return "member" if await is_member(session, group_id, actor_id) else None


async def is_moderator(session: AsyncSession, group_id: int, actor_id: int) -> bool:
    """Admins moderate too."""
    return await staff_role(session, group_id, actor_id) in STAFF


async def require_moderator(session: AsyncSession, group: Actor, actor: Actor) -> None:
    if not await is_moderator(session, group.id, actor.id):
        raise RoleError("only the cooperative's moderators and admins may do this")


async def admin_count(session: AsyncSession, group_id: int) -> int:
    q = select(func.count()).select_from(CoopRole).where(
        CoopRole.coop_actor_id == group_id, CoopRole.role == "admin"
    )
    return int((await session.execute(q)).scalar_one())


async def set_role(
    ctx: Context, session: AsyncSession, by: Actor, group: Actor, target: Actor, role: str
) -> str:
    """`by` (an admin of `group`) gives `target` the role `role`; returns the new role.

    Admins and moderators must be members or local accounts; `member` removes the staff
    role (the membership itself is unchanged). The last admin cannot step down.
    """
    del ctx  # roles are local state; the moderators collection is read on demand
    await coop_of(session, group)
    if role not in ROLES:
        raise RoleError(f"role must be one of {', '.join(ROLES)}")
    if await staff_role(session, group.id, by.id) != "admin":
        raise RoleError("only the cooperative's admins may change roles")
    if target.type != "Person":
        raise RoleError("roles are for people")
    if await is_banned(session, group.id, target.id):
        raise RoleError("this actor is banned from the cooperative")
    current = await staff_role(session, group.id, target.id)
    if current == "admin" and role != "admin" and await admin_count(session, group.id) <= 1:
        raise RoleError("the last admin of a cooperative cannot be demoted")
    if role == "member":
        await session.execute(
            delete(CoopRole).where(
                CoopRole.coop_actor_id == group.id, CoopRole.actor_id == target.id
            )
        )
        return role
    if not target.local and not await is_member(session, group.id, target.id):
        raise RoleError("a remote actor must be a member before getting a role")
    if current is None:
        session.add(CoopRole(coop_actor_id=group.id, actor_id=target.id, role=role))
    else:
        row = (
            await session.execute(
                select(CoopRole).where(
                    CoopRole.coop_actor_id == group.id, CoopRole.actor_id == target.id
                )
            )
        ).scalar_one()
        row.role = role
    await session.flush()
    return role
