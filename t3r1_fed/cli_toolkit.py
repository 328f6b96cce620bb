"""Everyday `t3r1 admin` verbs of the cooperative toolkit: discussions and replies, news,
meetings and RSVPs, consultations and votes, moderation and reports, profiles and the
directory. Each calls the service API (coops/forum.py, news.py, events.py, polls.py,
moderation.py, flags.py, directory.py) in one transaction, then delivers what it queued,
like `admin post`. A refused action exits with 2 and the reason."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.context import Context
from t3r1_fed.coops.posting import PostRefused
from t3r1_fed.db.models import Actor, Object

Action = Callable[[Context, AsyncSession], Awaitable[str]]


class Refused(PostRefused):
    """A toolkit action refused; `t3r1` prints the reason and exits with 2."""


async def _run(args: argparse.Namespace, fn: Action, *, deliver: bool = True) -> str:
    from t3r1_fed.cli import _run_then_deliver, _settings, _with_session

    async def guarded(ctx: Context, session: AsyncSession) -> str:
        try:
            return await fn(ctx, session)
        except PostRefused:
            raise
        except ValueError as e:  # every domain error of coops/ (and ActorError) is one
            raise Refused(str(e)) from e

    runner = _run_then_deliver if deliver else _with_session
    return await runner(_settings(args), guarded)


async def _member(session: AsyncSession, username: str) -> Actor:
    from t3r1_fed.coops.membership import user_actor

    return await user_actor(session, username)


async def _object(session: AsyncSession, uri: str, what: str) -> Object:
    obj = (await session.execute(select(Object).where(Object.uri == uri))).scalar()
    if obj is None or obj.deleted_at is not None:
        raise Refused(f"no such {what} here: {uri}")
    return obj


def _when(value: str | None, option: str, tz: str | None = None) -> datetime | None:
    """An ISO 8601 time; a naive one is read in `tz` (the meeting's timezone)."""
    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as e:
        raise Refused(f"{option}: not an ISO 8601 date and time: {value}") from e
    if dt.tzinfo is None:
        if not tz:
            raise Refused(f"{option}: give a UTC offset (…+01:00 or …Z) or --tz")
        try:
            dt = dt.replace(tzinfo=ZoneInfo(tz))
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise Refused(f"unknown timezone {tz!r}") from e
    return dt


# ---- forum and news ---------------------------------------------------------------------------


async def cmd_thread(args: argparse.Namespace) -> str:
    from t3r1_fed.coops.forum import start_thread

    async def go(ctx: Context, session: AsyncSession) -> str:
        row = await start_thread(ctx, session, await _member(session, args.username), args.coop,
                                 args.title, args.text)
        return row.uri

    return await _run(args, go)


async def cmd_reply(args: argparse.Namespace) -> str:
    from t3r1_fed.coops.forum import reply

    async def go(ctx: Context, session: AsyncSession) -> str:
        row = await reply(ctx, session, await _member(session, args.username), args.uri,
                          args.text)
        return row.uri

    return await _run(args, go)


async def cmd_news(args: argparse.Namespace) -> str:
    from t3r1_fed.coops.news import publish_news

    async def go(ctx: Context, session: AsyncSession) -> str:
        row = await publish_news(ctx, session, await _member(session, args.username), args.coop,
                                 args.text, title=args.title, summary=args.cw,
                                 language=args.lang)
        return row.uri

    return await _run(args, go)


# ---- meetings ---------------------------------------------------------------------------------


async def cmd_event(args: argparse.Namespace) -> str:
    from t3r1_fed.coops.events import PostalAddress, create_event
    from t3r1_fed.coops.news import local_coop

    start = _when(args.start, "--start", args.tz)
    end = _when(args.end, "--end", args.tz)
    assert start is not None

    async def go(ctx: Context, session: AsyncSession) -> str:
        coop, group = await local_coop(session, args.coop)
        row = await create_event(
            ctx, session, await _member(session, args.username), group, coop,
            name=args.title, start=start, end=end, timezone=args.tz,
            description=args.description or "", place_name=args.place,
            address=PostalAddress(street=args.address) if args.address else None,
            online_url=args.online, capacity=args.capacity,
        )  # fmt: skip
        return row.uri

    return await _run(args, go)


async def cmd_rsvp(args: argparse.Namespace) -> str:
    from t3r1_fed.coops.by_url import event_by_url
    from t3r1_fed.coops.events import join_event, leave_event

    async def go(ctx: Context, session: AsyncSession) -> str:
        member = await _member(session, args.username)
        obj = await event_by_url(ctx, session, args.uri)  # fetched if remote and unknown
        if args.leave:
            await leave_event(ctx, session, member, obj)
            return f"no longer taking part: {obj.uri}"
        rsvp = await join_event(ctx, session, member, obj)
        return f"taking part ({rsvp.state}): {obj.uri}"

    return await _run(args, go)


# ---- consultations ----------------------------------------------------------------------------


async def cmd_poll(args: argparse.Namespace) -> str:
    from t3r1_fed.coops.news import local_coop
    from t3r1_fed.coops.polls import create_poll

    ends = _when(args.ends, "--ends")

    async def go(ctx: Context, session: AsyncSession) -> str:
        coop, group = await local_coop(session, args.coop)
        row = await create_poll(ctx, session, await _member(session, args.username), group,
                                coop, question=args.question, options=args.options,
                                multiple=args.multiple, closes_at=ends)
        return row.uri

    return await _run(args, go)


async def cmd_vote(args: argparse.Namespace) -> str:
    from t3r1_fed.coops.by_url import poll_by_url
    from t3r1_fed.coops.polls import vote

    async def go(ctx: Context, session: AsyncSession) -> str:
        obj = await poll_by_url(ctx, session, args.uri)  # fetched if remote and unknown
        n = await vote(ctx, session, await _member(session, args.username), obj, args.options)
        if not n:
            return f"already counted: {obj.uri}"
        return f"{n} vote{'s' if n > 1 else ''} sent: {obj.uri}"

    return await _run(args, go)


# ---- moderation and reports -------------------------------------------------------------------

MODERATION = ("delete", "remove", "restore", "lock", "unlock", "pin", "unpin")


async def cmd_moderate(args: argparse.Namespace) -> str:
    from t3r1_fed.coops import moderation as m
    from t3r1_fed.coops.membership import find_actor

    async def go(ctx: Context, session: AsyncSession) -> str:
        group = await find_actor(ctx, session, args.coop)
        mod = await _member(session, args.by)
        uri, why, action = args.uri, args.reason, args.action
        if action == "delete":
            await m.delete_post(ctx, session, mod, group, uri, why)
        elif action == "remove":
            await m.remove_thread(ctx, session, mod, group, uri, why)
        elif action == "restore":
            await m.restore_thread(ctx, session, mod, group, uri)
        elif action in ("lock", "unlock"):
            await m.set_locked(ctx, session, mod, group, uri, action == "lock", why)
        else:
            await m.set_pinned(ctx, session, mod, group, uri, action == "pin")
        done = {"delete": "deleted", "remove": "removed", "restore": "restored",
                "lock": "locked", "unlock": "unlocked", "pin": "pinned", "unpin": "unpinned"}
        return f"{done[action]}: {uri}" + ("" if group.local else f" (asked {group.uri})")

    return await _run(args, go)


async def cmd_flags(args: argparse.Namespace) -> str:
    import orjson

    from t3r1_fed.coops.flags import list_flags
    from t3r1_fed.coops.membership import find_actor

    async def go(ctx: Context, session: AsyncSession) -> str:
        group = await find_actor(ctx, session, args.coop)
        rows = await list_flags(ctx, session, await _member(session, args.by), group,
                                state=None if args.all else "open")
        lines = []
        for f in rows:
            reporter = await session.get(Actor, f.reporter_id)
            objects = " ".join(orjson.loads(f.object_uris))
            lines.append("\t".join([str(f.id), f.state, f"{f.created_at:%Y-%m-%d %H:%M}",
                                    reporter.uri if reporter else "?", objects,
                                    " ".join((f.comment or "").split())]))
        return "\n".join(lines) or "no open report"

    return await _run(args, go, deliver=False)


async def cmd_resolve_flag(args: argparse.Namespace) -> str:
    from t3r1_fed.coops.flags import resolve_flag
    from t3r1_fed.coops.membership import find_actor

    async def go(ctx: Context, session: AsyncSession) -> str:
        group = await find_actor(ctx, session, args.coop)
        row = await resolve_flag(ctx, session, await _member(session, args.by), group,
                                 args.flag_id)
        return f"report {row.id} resolved"

    return await _run(args, go, deliver=False)


# ---- profiles and directory -------------------------------------------------------------------

PROFILE_FIELDS = ("structure", "mandate", "skills", "contact")


async def cmd_profile(args: argparse.Namespace) -> str:
    from t3r1_fed.coops.directory import get_profile, shown_fields, update_profile

    async def go(ctx: Context, session: AsyncSession) -> str:
        member = await _member(session, args.username)
        changes: dict[str, Any] = {f: getattr(args, f) for f in PROFILE_FIELDS
                                   if getattr(args, f) is not None}
        flags = {f"show_{f}": getattr(args, f"show_{f}") for f in PROFILE_FIELDS}
        flags["listed"] = args.listed
        changes.update({k: v for k, v in flags.items() if v is not None})
        row = await (update_profile(ctx, session, member, **changes) if changes
                     else get_profile(session, member))
        lines = [f"{member.uri}\t{'listed' if row.listed else 'not listed'} in the directory"]
        for f in PROFILE_FIELDS:
            value = getattr(row, f)
            if value:
                shown = "shown" if getattr(row, f"show_{f}") else "hidden"
                lines.append(f"{f}\t{value}\t({shown})")
        published = shown_fields(row)
        lines.append("published: " + (", ".join(n for n, _ in published) or "nothing"))
        return "\n".join(lines)

    return await _run(args, go)


async def cmd_directory(args: argparse.Namespace) -> str:
    from t3r1_fed.coops.directory import search

    async def go(ctx: Context, session: AsyncSession) -> str:
        found = await search(session, args.query, structure=args.structure, skill=args.skill,
                             hashtag=args.hashtag, kind=args.kind, limit=args.limit)
        lines = []
        for e in found:
            extra = "; ".join(f"{k}: {v}" for k, v in e.fields.items())
            if e.tags:
                extra = (extra + "; " if extra else "") + " ".join(f"#{t}" for t in e.tags)
            lines.append("\t".join([e.kind, f"{e.username}@{e.domain}", e.name, e.uri, extra]))
        return "\n".join(lines) or "nothing found"

    return await _run(args, go, deliver=False)


# ---- parsers ----------------------------------------------------------------------------------


def add_admin_commands(admin: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = admin.add_parser("thread", help="a member opens a discussion in a cooperative")
    s.add_argument("username")
    s.add_argument("coop")
    s.add_argument("title")
    s.add_argument("text", help="Markdown")
    s.set_defaults(fn=cmd_thread)

    s = admin.add_parser("reply", help="a member replies to a post (local or remote)")
    s.add_argument("username")
    s.add_argument("uri", help="URI of the post replied to")
    s.add_argument("text")
    s.set_defaults(fn=cmd_reply)

    s = admin.add_parser("news", help="a member publishes news in a cooperative")
    s.add_argument("username")
    s.add_argument("coop")
    s.add_argument("text")
    s.add_argument("--title", default=None, help="makes it an Article")
    s.add_argument("--cw", default=None, help="content warning")
    s.add_argument("--lang", default=None, help="language tag (fr, en …)")
    s.set_defaults(fn=cmd_news)

    s = admin.add_parser("event", help="a member schedules a meeting in a cooperative")
    s.add_argument("username")
    s.add_argument("coop")
    s.add_argument("title")
    s.add_argument("--start", required=True, help="ISO 8601 (local to --tz if no offset)")
    s.add_argument("--end", default=None)
    s.add_argument("--tz", default=None, help="IANA timezone, e.g. Europe/Paris")
    s.add_argument("--place", default=None, help="place name")
    s.add_argument("--address", default=None, help="postal address, one line")
    s.add_argument("--online", default=None, help="link of an online meeting")
    s.add_argument("--description", default=None)
    s.add_argument("--capacity", type=int, default=None)
    s.set_defaults(fn=cmd_event)

    s = admin.add_parser("rsvp", help="a member takes part in a meeting (or --leave)")
    s.add_argument("username")
    s.add_argument("uri", help="URI of the meeting (fetched if remote and unknown here)")
    s.add_argument("--leave", action="store_true")
    s.set_defaults(fn=cmd_rsvp)

    s = admin.add_parser("poll", help="a member opens a consultation in a cooperative")
    s.add_argument("username")
    s.add_argument("coop")
    s.add_argument("question")
    s.add_argument("options", nargs="+", metavar="OPTION")
    s.add_argument("--multiple", action="store_true", help="several choices allowed")
    s.add_argument("--ends", default=None, help="closing time, ISO 8601 with an offset")
    s.set_defaults(fn=cmd_poll)

    s = admin.add_parser("vote", help="a member votes in a consultation")
    s.add_argument("username")
    s.add_argument("uri", help="URI of the poll (fetched if remote and unknown here)")
    s.add_argument("options", nargs="+", metavar="OPTION")
    s.set_defaults(fn=cmd_vote)

    s = admin.add_parser("moderate", help="a moderator acts on a post of a cooperative")
    s.add_argument("action", choices=MODERATION)
    s.add_argument("coop", help="local cooperative name, name@host or URL")
    s.add_argument("uri", help="URI of the post or thread")
    s.add_argument("--by", required=True, help="local moderator")
    s.add_argument("--reason", default=None)
    s.set_defaults(fn=cmd_moderate)

    s = admin.add_parser("flags", help="a moderator lists a cooperative's reports")
    s.add_argument("coop", help="local cooperative name, name@host or URL")
    s.add_argument("--by", required=True, help="local moderator")
    s.add_argument("--all", action="store_true", help="resolved reports too")
    s.set_defaults(fn=cmd_flags)

    s = admin.add_parser("resolve-flag", help="a moderator closes one of a cooperative's reports")
    s.add_argument("coop", help="local cooperative name, name@host or URL")
    s.add_argument("flag_id", type=int, help="the report's number (first column of `flags`)")
    s.add_argument("--by", required=True, help="local moderator")
    s.set_defaults(fn=cmd_resolve_flag)

    s = admin.add_parser("profile", help="show or edit a member's directory profile")
    s.add_argument("username")
    for f in PROFILE_FIELDS:
        s.add_argument(f"--{f}", default=None)
        s.add_argument(f"--show-{f}", dest=f"show_{f}", default=None,
                       action=argparse.BooleanOptionalAction, help=f"publish the {f} or not")
    s.add_argument("--listed", default=None, action=argparse.BooleanOptionalAction,
                   help="appear in the directory or not")
    s.set_defaults(fn=cmd_profile)

    s = admin.add_parser("directory", help="search members and cooperatives")
    s.add_argument("query", nargs="?", default="")
    s.add_argument("--structure", default=None)
    s.add_argument("--skill", default=None)
    s.add_argument("--hashtag", default=None)
    s.add_argument("--kind", choices=["member", "coop"], default=None)
    s.add_argument("--limit", type=int, default=50)
    s.set_defaults(fn=cmd_directory)
