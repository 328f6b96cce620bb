"""A Notification entity for the stream, exactly as GET /api/v1/notifications/:id shows it
(api/notifications.py renders it: group key, account, status)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.api.notifications import render_all, standing
from t3r1_fed.api.viewer import Viewer
from t3r1_fed.context import Context
from t3r1_fed.db.models import Actor, User
from t3r1_fed.db.models_api import Notification


async def render_one(
    ctx: Context, session: AsyncSession, viewer: Actor, nid: int
) -> dict[str, Any] | None:
    """Notification `nid` of `viewer`, or None when it is not theirs, no longer stands (its
    like or boost undone, its post deleted …) or its status is not visible to them."""
    row = (await session.execute(
        select(Notification).where(Notification.id == nid,
                                   Notification.recipient_id == viewer.id, *standing())
    )).scalar()
    user = (await session.execute(select(User).where(User.actor_id == viewer.id))).scalar()
    if row is None or user is None:
        return None
    docs = await render_all(ctx, session, Viewer(user, viewer), [row])
    return docs[0] if docs else None
