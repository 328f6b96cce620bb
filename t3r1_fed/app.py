"""create_app(settings) → aiohttp Application. Routes are wired here and only here."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from t3r1_fed import features
from t3r1_fed.api import ratelimit
from t3r1_fed.appkeys import CTX, WRITER
from t3r1_fed.config import Settings
from t3r1_fed.context import Context
from t3r1_fed.handlers import activitypub as ap
from t3r1_fed.handlers import discovery
from t3r1_fed.httputil import json_error
from t3r1_fed.inbox.receive import handle_inbox
from t3r1_fed.inbox.writer import InboxWriter
from t3r1_fed.streaming import handlers as streaming
from t3r1_fed.worker import Worker

log = logging.getLogger("t3r1.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
WORKER = web.AppKey("worker", Worker)
CORS_PREFIXES = ("/.well-known/", "/nodeinfo/", "/api/", "/oauth/")


@web.middleware
async def errors_and_cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method == "OPTIONS" and request.path.startswith(CORS_PREFIXES):
        return web.Response(
            status=204,
            headers={
                "Access-Control-Allow-Origin": "*",
                "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
                "Access-Control-Allow-Headers": "Authorization, Content-Type, Idempotency-Key",
                "Access-Control-Max-Age": "86400",
            },
        )
    try:
        resp = await handler(request)
    except web.HTTPException as e:
        if e.content_type == "application/json" or e.status < 400:
            if request.path.startswith(CORS_PREFIXES):
                # Browser clients (Elk, Phanpy) must be able to read API errors too.
                _cors(e.headers)
            raise
        resp = json_error(e.status, e.reason)
    except Exception:
        log.exception("unhandled error", extra={"path": request.path})
        resp = json_error(500, "internal error")
    if request.path.startswith(CORS_PREFIXES):
        _cors(resp.headers)
    return resp


def _cors(headers: Any) -> None:
    headers.setdefault("Access-Control-Allow-Origin", "*")
    headers.setdefault("Access-Control-Expose-Headers", "Link")


def create_app(
    settings: Settings, *, ctx: Context | None = None, inline_worker: bool | None = None
) -> web.Application:
    # Rate limits inside errors_and_cors, so a 429 gets the CORS headers too.
    app = web.Application(
        middlewares=[errors_and_cors, ratelimit.middleware(settings)],
        client_max_size=settings.max_inbox_body,
    )
    app[CTX] = ctx or Context.create(settings)
    app[WRITER] = InboxWriter(app[CTX])
    run_worker = settings.inline_worker if inline_worker is None else inline_worker

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        c = app[CTX]
        await c.start()
        app[WRITER].start()
        worker = Worker(c)
        if run_worker:
            worker.start()
        app[WORKER] = worker
        yield
        await worker.close()
        await app[WRITER].close()
        await c.close()

    app.cleanup_ctx.append(lifecycle)
    streaming.install(app)  # the streaming hub (LISTEN/NOTIFY), after the context starts
    r = app.router
    r.add_get("/.well-known/webfinger", discovery.webfinger)
    r.add_get("/.well-known/host-meta", discovery.host_meta)
    r.add_get("/.well-known/nodeinfo", discovery.nodeinfo_index)
    r.add_get("/nodeinfo/{version}", discovery.nodeinfo)
    r.add_post("/inbox", handle_inbox)
    r.add_get("/actor", ap.actor)
    r.add_post("/actor/inbox", handle_inbox)
    r.add_get("/actor/outbox", ap.outbox)
    r.add_get("/actor/followers", ap.followers)
    r.add_get("/actor/following", ap.following)
    for kind in ("u", "c"):
        r.add_get(f"/{kind}/{{name}}", ap.actor)
        r.add_post(f"/{kind}/{{name}}/inbox", handle_inbox)
        r.add_get(f"/{kind}/{{name}}/outbox", ap.outbox)
        r.add_get(f"/{kind}/{{name}}/followers", ap.followers)
        r.add_get(f"/{kind}/{{name}}/following", ap.following)
    r.add_get("/c/{name}/moderators", ap.moderators)
    r.add_get("/c/{name}/featured", ap.featured)
    r.add_get("/@{name}", ap.actor)
    r.add_get("/o/{oid}", ap.object_)
    r.add_get("/a/{aid}", ap.activity)
    features.add_routes(r)
    return app
