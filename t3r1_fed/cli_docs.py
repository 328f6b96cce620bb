"""`t3r1 admin` verbs for the FAQ and collaborative documents (they call coops/faq.py and
coops/documents.py, then deliver what they queued, like `admin post`)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.coops.editing import EditError
from t3r1_fed.coops.posting import PostRefused

Action = Callable[[Context, AsyncSession], Awaitable[str]]


class Refused(PostRefused):
    """A FAQ or document operation refused; `t3r1` prints the reason and exits with 2."""


async def _run(args: argparse.Namespace, fn: Action) -> str:
    from t3r1_fed.cli import _run_then_deliver, _settings

    async def guarded(ctx: Context, session: AsyncSession) -> str:
        try:
            return await fn(ctx, session)
        except EditError as e:  # FaqError, DocumentError, DocumentConflict
            raise Refused(str(e)) from e

    return await _run_then_deliver(_settings(args), guarded)


async def cmd_faq_add(args: argparse.Namespace) -> str:
    from t3r1_fed.coops.faq import add_entry
    from t3r1_fed.coops.membership import group_actor, user_actor

    async def go(ctx: Context, session: AsyncSession) -> str:
        group = await group_actor(session, args.coop)
        entry = await add_entry(ctx, session, await user_actor(session, args.username), group,
                                args.question, args.answer)
        return f"FAQ entry {entry.position}: {entry.uri}"

    return await _run(args, go)


async def cmd_doc_save(args: argparse.Namespace) -> str:
    from t3r1_fed.coops.documents import create_document, save_document
    from t3r1_fed.coops.membership import group_actor, user_actor

    try:
        markdown = await asyncio.to_thread(Path(args.file).read_text, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise Refused(f"cannot read {args.file}: {e}") from e
    if args.doc and args.base is None:
        raise Refused("--base VERSION is required with --doc (the version you edited)")

    async def go(ctx: Context, session: AsyncSession) -> str:
        group = await group_actor(session, args.coop)
        who = await user_actor(session, args.username)
        if not args.doc:
            row = await create_document(ctx, session, who, group, args.title, markdown,
                                        args.summary)
            return f"document created (version 1): {row.uri}"
        version = await save_document(ctx, session, who, args.doc, markdown, base=args.base,
                                      title=args.title, summary=args.summary)
        return f"document saved (version {version}): {args.doc}"

    return await _run(args, go)


def add_admin_commands(admin: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = admin.add_parser("faq-add", help="a member adds a question and its answer to the FAQ")
    s.add_argument("coop")
    s.add_argument("username")
    s.add_argument("question")
    s.add_argument("answer", help="plain text or Markdown")
    s.set_defaults(fn=cmd_faq_add)

    s = admin.add_parser("doc-save", help="a member creates or saves a Markdown document")
    s.add_argument("coop")
    s.add_argument("username")
    s.add_argument("title")
    s.add_argument("file", help="Markdown file (UTF-8)")
    s.add_argument("--doc", default=None, help="URI of the document to save a new version of")
    s.add_argument("--base", type=int, default=None, help="version the edit started from")
    s.add_argument("--summary", default=None, help="edit note")
    s.set_defaults(fn=cmd_doc_save)
