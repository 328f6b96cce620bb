"""`t3r1 admin folder rename|move|delete …` (coops/folders.py) and
`t3r1 admin media usage USERNAME` (media/quota.py).

A folder is named by its URL, or by its name when no other folder of the cooperative
bears it. Folder changes are delivered like `admin post`; a refused one exits with 2.
"""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context


async def _folder_action(args: argparse.Namespace) -> str:
    from t3r1_fed.cli_toolkit import _member, _run
    from t3r1_fed.coops import folders as f
    from t3r1_fed.coops.news import local_coop

    async def go(ctx: Context, session: AsyncSession) -> str:
        _, group = await local_coop(session, args.coop)
        actor = await _member(session, args.username)
        folder = await f.folder_by_ref(session, group, args.folder)
        if args.action == "rename":
            await f.rename_folder(ctx, session, actor, group, folder, args.name)
            return f"renamed: {folder.uri}\t{folder.name}"
        if args.action == "move":
            parent = None if args.to is None else await f.folder_by_ref(session, group, args.to)
            await f.move_folder(ctx, session, actor, group, folder, parent)
            where = parent.uri if parent is not None else "the top"
            return f"moved: {folder.uri} into {where}"
        uri = folder.uri
        n = await f.delete_folder(ctx, session, actor, group, folder,
                                  recursive=args.recursive, reason=args.reason)
        return f"deleted: {uri}" + (f" ({n} file{'s' if n > 1 else ''} deleted)" if n else "")

    return await _run(args, go)


async def cmd_media_usage(args: argparse.Namespace) -> str:
    from t3r1_fed.cli_toolkit import _member, _run
    from t3r1_fed.db.models import Actor
    from t3r1_fed.db.models_coops import Media
    from t3r1_fed.media.quota import coop_usage, human, member_usage

    async def go(ctx: Context, session: AsyncSession) -> str:
        member = await _member(session, args.username)
        s = ctx.settings
        mine = await member_usage(session, member.id, s.media_quota_bytes)
        quota = human(mine.quota) if mine.quota else "unlimited"
        pct = f" ({100 * mine.used / mine.quota:.1f} %)" if mine.quota else ""
        lines = [f"{args.username}\t{human(mine.used)} used of {quota}{pct}\t"
                 f"{mine.files} file{'s' if mine.files != 1 else ''}\t{mine.used} bytes"]
        if s.coop_media_quota_bytes:
            q = select(Media.coop_actor_id).where(
                Media.owner_id == member.id, Media.coop_actor_id.is_not(None)).distinct()
            for coop_id in (await session.execute(q)).scalars():
                assert coop_id is not None
                theirs = await coop_usage(session, coop_id, s.coop_media_quota_bytes)
                group = await session.get(Actor, coop_id)
                name = group.username if group is not None else str(coop_id)
                lines.append(f"{name}\t{human(theirs.used)} used of "
                             f"{human(theirs.quota)} (cooperative)")
        return "\n".join(lines)

    return await _run(args, go, deliver=False)


def add_admin_commands(admin: Any) -> None:
    s = admin.add_parser("folder", help="rename, move or delete a cooperative's folder")
    verbs = s.add_subparsers(dest="action", required=True)
    r = verbs.add_parser("rename", help="rename a folder (moderators, or its creator)")
    r.add_argument("username", help="the member acting")
    r.add_argument("coop")
    r.add_argument("folder", help="folder URL, or its name if unique")
    r.add_argument("name", help="the new name")
    m = verbs.add_parser("move", help="move a folder (moderators, or its creator)")
    m.add_argument("username", help="the member acting")
    m.add_argument("coop")
    m.add_argument("folder", help="folder URL, or its name if unique")
    where = m.add_mutually_exclusive_group(required=True)
    where.add_argument("--to", default=None, help="the new parent folder (URL or name)")
    where.add_argument("--top", action="store_true", help="move it to the top")
    d = verbs.add_parser("delete", help="delete a folder (moderators only)")
    d.add_argument("username", help="the moderator acting")
    d.add_argument("coop")
    d.add_argument("folder", help="folder URL, or its name if unique")
    d.add_argument("--recursive", action="store_true",
                   help="also delete its files and sub-folders")
    d.add_argument("--reason", default=None)
    for p in (r, m, d):
        p.set_defaults(fn=_folder_action)

    s = admin.add_parser("media", help="members' stored files")
    verbs = s.add_subparsers(dest="media_action", required=True)
    u = verbs.add_parser("usage", help="a member's stored bytes against the quota")
    u.add_argument("username")
    u.set_defaults(fn=cmd_media_usage)
