"""Storage quotas: what a member's uploads (and a cooperative's files) may weigh in all.

Counted: the stored bytes (`media.size`, after re-encoding) of local files — references to
remote files weigh nothing here — except those of posts that were deleted, so deleting a
file or the post that carried it frees its share. Caps: `media_quota_bytes` per member
(default 1 GiB) and `coop_media_quota_bytes` per cooperative (files filed under it; default
0); 0 means unlimited. `media/upload.py` checks them before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from t3r1_fed.db.models import Actor, Object
from t3r1_fed.db.models_coops import Media


@dataclass(frozen=True)
class Usage:
    used: int  # bytes
    files: int
    quota: int  # 0: unlimited

    @property
    def left(self) -> int | None:
        return None if not self.quota else max(0, self.quota - self.used)


def human(n: int) -> str:
    """1536 → '1.5 KiB' (binary units, as the caps are set)."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


async def _sum(session: AsyncSession, where: ColumnElement[bool]) -> tuple[int, int]:
    q = (
        select(func.coalesce(func.sum(Media.size), 0), func.count(Media.id))
        .select_from(Media)
        .outerjoin(Object, Object.id == Media.object_id)
        .where(where, Media.remote_url.is_(None),
               or_(Media.object_id.is_(None), Object.deleted_at.is_(None)))
    )
    used, files = (await session.execute(q)).one()
    return int(used), int(files)


async def member_usage(session: AsyncSession, owner_id: int, quota: int) -> Usage:
    used, files = await _sum(session, Media.owner_id == owner_id)
    return Usage(used, files, quota)


async def coop_usage(session: AsyncSession, coop_actor_id: int, quota: int) -> Usage:
    used, files = await _sum(session, Media.coop_actor_id == coop_actor_id)
    return Usage(used, files, quota)


async def over_quota(
    session: AsyncSession,
    owner: Actor,
    size: int,
    *,
    member_quota: int,
    coop_actor_id: int | None = None,
    coop_quota: int = 0,
) -> str | None:
    """Why a new file of `size` bytes would not fit, or None. Locks the owner's actor row
    (PostgreSQL) so that two uploads at once cannot both slip under the cap."""
    await session.execute(select(Actor.id).where(Actor.id == owner.id).with_for_update())
    if member_quota:
        mine = await member_usage(session, owner.id, member_quota)
        if mine.used + size > member_quota:
            return (f"Storage quota exceeded: {human(mine.used)} used of "
                    f"{human(member_quota)}, this file needs {human(size)}")
    if coop_quota and coop_actor_id is not None:
        theirs = await coop_usage(session, coop_actor_id, coop_quota)
        if theirs.used + size > coop_quota:
            return (f"The cooperative's storage quota is exceeded: {human(theirs.used)} used "
                    f"of {human(coop_quota)}, this file needs {human(size)}")
    return None
