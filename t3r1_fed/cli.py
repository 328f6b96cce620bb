"""The `t3r1` command: init, serve, worker, migrate, admin …, demo."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed import __version__
from t3r1_fed.actors.local import ActorError, create_coop, create_user, ensure_instance_actor
from t3r1_fed.config import ConfigError, Settings, _parse_bool, write_instance_file
from t3r1_fed.context import Context
from t3r1_fed.coops.posting import PostRefused, local_delete, local_post
from t3r1_fed.db.engine import upgrade
from t3r1_fed.logs import setup_logging
from t3r1_fed.worker import Worker


class CliError(Exception):
    pass


def _settings(args: argparse.Namespace, **over: Any) -> Settings:
    return Settings.load(data_dir=getattr(args, "data_dir", None), **over)


async def _with_session(settings: Settings,
                        fn: Callable[[Context, AsyncSession], Awaitable[str]]) -> str:
    ctx = Context.create(settings)
    try:
        await ctx.claim_id_slot()
        async with ctx.sessions() as session, session.begin():
            return await fn(ctx, session)
    finally:
        await ctx.engine.dispose()


async def cmd_init(args: argparse.Namespace) -> str:
    data_dir = Path(args.data_dir or Settings.load().data_dir)
    existing = Settings.load(data_dir=data_dir)
    domain = args.domain or existing.domain
    scheme = args.scheme or (existing.scheme if args.domain is None else "https")
    settings = Settings.from_mapping({**_fields(existing), "domain": domain, "scheme": scheme,
                                      "data_dir": data_dir})
    write_instance_file(data_dir, settings.domain, settings.scheme)
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    await upgrade(settings.effective_database_url)

    where = data_dir

    async def go(ctx: Context, session: AsyncSession) -> str:
        await ensure_instance_actor(session, ctx.uris, settings.domain)
        return f"instance ready: {settings.base_url} (data in {where})"

    return await _with_session(settings, go)


def _fields(s: Settings) -> dict[str, Any]:
    return {k: getattr(s, k) for k in s.__dataclass_fields__ if k != "extra"}


async def cmd_migrate(args: argparse.Namespace) -> str:
    settings = _settings(args)
    await upgrade(settings.effective_database_url)
    return "migrations applied"


async def cmd_create_user(args: argparse.Namespace) -> str:
    async def go(ctx: Context, session: AsyncSession) -> str:
        user = await create_user(session, ctx.uris, ctx.settings.domain, args.username,
                                 args.password, admin=args.admin)
        return f"user created: {ctx.uris.user(user.username)}"

    return await _with_session(_settings(args), go)


async def cmd_create_coop(args: argparse.Namespace) -> str:
    async def go(ctx: Context, session: AsyncSession) -> str:
        coop = await create_coop(session, ctx.uris, ctx.settings.domain, args.name, args.owner,
                                 openness=args.openness, private=args.private, title=args.title)
        return f"cooperative created: {ctx.uris.coop(coop.name)}"

    return await _with_session(_settings(args), go)


def _cli_deliver(settings: Settings) -> bool:
    """T3R1_CLI_DELIVER (default on): deliver inline after an admin action.

    Unknown T3R1_* keys reach `extra` as strings, so "0"/"false" must be parsed, not tested
    for truthiness.
    """
    value = settings.extra.get("cli_deliver", True)
    if isinstance(value, str):
        return _parse_bool("T3R1_CLI_DELIVER", value)
    return bool(value)


async def _run_then_deliver(settings: Settings,
                            fn: Callable[[Context, AsyncSession], Awaitable[str]]) -> str:
    """Do a local action, then deliver what it queued (a running server would do it too)."""
    ctx = Context.create(settings)
    await ctx.start()
    try:
        async with ctx.sessions() as session, session.begin():
            out = await fn(ctx, session)
        if _cli_deliver(settings):
            from t3r1_fed.federation.delivery import DeliveryPump

            pump = DeliveryPump(ctx)
            try:
                await pump.drain(timeout=20)
            except TimeoutError:
                out += " (some deliveries still queued; the worker will retry them)"
        return out
    finally:
        await ctx.close()


async def cmd_post(args: argparse.Namespace) -> str:
    async def go(ctx: Context, session: AsyncSession) -> str:
        obj = await local_post(ctx, session, args.username, args.coop, args.text)
        return obj.uri

    return await _run_then_deliver(_settings(args), go)


async def cmd_delete_post(args: argparse.Namespace) -> str:
    async def go(ctx: Context, session: AsyncSession) -> str:
        await local_delete(ctx, session, args.username, args.uri)
        return f"deleted {args.uri}"

    return await _run_then_deliver(_settings(args), go)


async def cmd_follow(args: argparse.Namespace) -> str:
    from t3r1_fed.actors.follows import follow

    async def go(ctx: Context, session: AsyncSession) -> str:
        f = await follow(ctx, session, args.username, args.target)
        return f"follow {f.state}: {args.target}"

    return await _run_then_deliver(_settings(args), go)


async def cmd_unfollow(args: argparse.Namespace) -> str:
    from t3r1_fed.actors.follows import unfollow

    async def go(ctx: Context, session: AsyncSession) -> str:
        await unfollow(ctx, session, args.username, args.target)
        return f"unfollowed {args.target}"

    return await _run_then_deliver(_settings(args), go)


async def _serve(settings: Settings, host: str, port: int, *, banner: str = "") -> None:
    from t3r1_fed.app import create_app

    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    print(banner or f"t3r1-fed {__version__} listening on http://{host}:{port} "
          f"as {settings.base_url}", flush=True)
    await _wait_for_signal()
    await runner.cleanup()


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def cmd_serve(args: argparse.Namespace) -> str:
    settings = _settings(args)
    await _serve(settings, args.host, args.port)
    return "stopped"


async def cmd_worker(args: argparse.Namespace) -> str:
    ctx = Context.create(_settings(args))
    await ctx.start()
    worker = Worker(ctx)
    worker.start()
    print("t3r1-fed worker running", flush=True)
    await _wait_for_signal()
    await worker.close()
    await ctx.close()
    return "stopped"


async def cmd_demo(args: argparse.Namespace) -> str:
    """A working local instance on http://HOST:PORT with a demo member and cooperative."""
    data_dir = Path(args.data_dir or "data")
    domain = f"{args.host}:{args.port}"
    init_args = argparse.Namespace(data_dir=data_dir, domain=domain, scheme="http")
    print(await cmd_init(init_args), flush=True)
    settings = Settings.load(data_dir=data_dir)

    async def seed(ctx: Context, session: AsyncSession) -> str:
        from t3r1_fed.actors.local import get_user

        try:
            await get_user(session, "demo")
            return "demo data already present"
        except ActorError:
            pass
        await create_user(session, ctx.uris, settings.domain, "demo", "demo-password", admin=True)
        await create_coop(session, ctx.uris, settings.domain, "accueil", "demo",
                          title="Coopérative d'accueil")
        await local_post(ctx, session, "demo", "accueil",
                         "Bienvenue dans la coopérative d'accueil de cette instance t3r1-fed !")
        return "demo member 'demo' (password demo-password) and cooperative 'accueil' created"

    ctx = Context.create(settings)
    try:
        async with ctx.sessions() as session, session.begin():
            print(await seed(ctx, session), flush=True)
    finally:
        await ctx.engine.dispose()
    await _serve(settings, args.host, args.port, banner=(
        f"t3r1-fed {__version__}: {settings.base_url}/c/accueil — "
        f"try {settings.base_url}/.well-known/webfinger?resource=acct:accueil@{settings.domain}"))
    return "stopped"


def _abs_path(value: str) -> Path:
    return Path(os.path.abspath(value))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="t3r1", description="t3r1-fed: federated union cooperatives")
    p.add_argument("--version", action="version", version=f"t3r1-fed {__version__}")
    p.add_argument("--data-dir", dest="data_dir", default=None, type=_abs_path,
                   help="data directory (default: $T3R1_DATA_DIR or ./data)")
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("init", help="create the data directory, database and instance keys")
    s.add_argument("--domain", required=False, help="public host name, optionally with :port")
    s.add_argument("--scheme", choices=["http", "https"], default=None,
                   help="https (default); http only for local development and tests")
    s.set_defaults(fn=cmd_init)

    s = sub.add_parser("serve", help="run the web server with an in-process worker")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.set_defaults(fn=cmd_serve)

    sub.add_parser("worker", help="run the queue workers only").set_defaults(fn=cmd_worker)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(fn=cmd_migrate)

    s = sub.add_parser("demo", help="init + demo data + serve, on http://127.0.0.1:8080")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.set_defaults(fn=cmd_demo)

    admin = sub.add_parser("admin", help="administration").add_subparsers(dest="admin_cmd",
                                                                          required=True)
    s = admin.add_parser("create-user", help="create a local member")
    s.add_argument("username")
    s.add_argument("--password", required=True)
    s.add_argument("--admin", action="store_true")
    s.set_defaults(fn=cmd_create_user)

    s = admin.add_parser("create-coop", help="create a cooperative")
    s.add_argument("name")
    s.add_argument("--owner", required=True)
    s.add_argument("--openness", choices=["open", "moderated", "invite_only"], default="open")
    s.add_argument("--private", action="store_true")
    s.add_argument("--title", default=None)
    s.set_defaults(fn=cmd_create_coop)

    s = admin.add_parser("post", help="a member posts into a cooperative")
    s.add_argument("username")
    s.add_argument("coop")
    s.add_argument("text")
    s.set_defaults(fn=cmd_post)

    s = admin.add_parser("follow", help="a member follows an actor (name@host or URL)")
    s.add_argument("username")
    s.add_argument("target")
    s.set_defaults(fn=cmd_follow)

    s = admin.add_parser("unfollow", help="a member stops following an actor")
    s.add_argument("username")
    s.add_argument("target")
    s.set_defaults(fn=cmd_unfollow)

    s = admin.add_parser("delete-post", help="a member deletes one of their posts")
    s.add_argument("username")
    s.add_argument("uri")
    s.set_defaults(fn=cmd_delete_post)

    from t3r1_fed.cli_membership import add_admin_commands

    add_admin_commands(admin)
    from t3r1_fed.cli_media import add_admin_commands as add_media_commands

    add_media_commands(admin)
    from t3r1_fed.cli_folders import add_admin_commands as add_folder_commands

    add_folder_commands(admin)  # folder rename|move|delete, media usage
    from t3r1_fed.cli_docs import add_admin_commands as add_docs_commands

    add_docs_commands(admin)
    from t3r1_fed.cli_toolkit import add_admin_commands as add_toolkit_commands

    add_toolkit_commands(admin)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    try:
        out = asyncio.run(args.fn(args))
    except (CliError, ConfigError, ActorError, PostRefused) as e:
        print(f"t3r1: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    if out:
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
