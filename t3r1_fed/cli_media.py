"""`t3r1 admin upload USER COOP FILE [--folder NAME] [--category C] [--name TITLE]`:
a member adds a file to a cooperative's resources (coops/resources.py), then what it
queued is delivered, like `admin post`."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.coops.resources import CATEGORIES


async def cmd_upload(args: argparse.Namespace) -> str:
    # `t3r1` reports ActorError (also when run as `python -m t3r1_fed.cli`, where the
    # cli module's own CliError is another class): domain errors are re-raised as it.
    from t3r1_fed.actors.local import ActorError, get_coop, get_user
    from t3r1_fed.cli import _run_then_deliver, _settings
    from t3r1_fed.coops.posting import PostRefused
    from t3r1_fed.coops.resources import create_folder, find_folder, upload_resource
    from t3r1_fed.db.models import Actor

    path = Path(args.file)
    try:
        # The file name is only display text: never used as a path on our side.
        data = await asyncio.to_thread(path.read_bytes)
    except OSError as e:
        raise ActorError(f"cannot read {args.file}: {e.strerror}") from e

    async def go(ctx: Context, session: AsyncSession) -> str:
        user = await get_user(session, args.username)
        author = await session.get(Actor, user.actor_id)
        _, group = await get_coop(session, args.coop)
        assert author is not None
        try:
            folder = None
            if args.folder:
                folder = await find_folder(session, group, args.folder)
                if folder is None:
                    folder = await create_folder(ctx, session, author, group, args.folder)
            obj, media = await upload_resource(
                ctx, session, author, group, data, filename=path.name, name=args.name,
                category=args.category, folder=folder, description=args.description,
            )  # fmt: skip
        except PostRefused:
            raise
        except ValueError as e:
            raise ActorError(str(e)) from e
        return f"{obj.uri}\t{media.media_type}\t{ctx.uris.base}/media/{media.key}"

    out: Any = await _run_then_deliver(_settings(args), go)
    return str(out)


def add_admin_commands(admin: Any) -> None:
    s = admin.add_parser("upload", help="a member adds a file to a cooperative's resources")
    s.add_argument("username")
    s.add_argument("coop")
    s.add_argument("file")
    s.add_argument("--folder", default=None, help="folder name (created if missing)")
    s.add_argument("--category", choices=CATEGORIES, default="other")
    s.add_argument("--name", default=None, help="title (default: the file name)")
    s.add_argument("--description", default=None, help="description / alt text")
    s.set_defaults(fn=cmd_upload)
