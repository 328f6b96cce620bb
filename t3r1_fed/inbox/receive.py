"""POST /inbox and /{u,c}/{name}/inbox: verify, check, persist, answer 202.

Order matters for cost: size → JSON → signature syntax, digest and clock (no key needed) →
key (cache, then database, then one signed fetch) → RSA verify → signer == actor →
origins → group-committed insert. Nothing is processed here; the worker does that.
"""

from __future__ import annotations

import logging
import time

import orjson
from aiohttp import web
from sqlalchemy import select

from t3r1_fed.appkeys import CTX, WRITER
from t3r1_fed.context import Context
from t3r1_fed.db.models import Actor
from t3r1_fed.federation.httpsig import SignatureError, parse_request_signature
from t3r1_fed.federation.verifier import signer_of
from t3r1_fed.httputil import json_error, read_limited
from t3r1_fed.inbox.origin import OriginError, check_origins
from t3r1_fed.inbox.writer import Incoming
from t3r1_fed.vocab.normalize import InvalidObject, parse_envelope

log = logging.getLogger("t3r1.inbox")

# How long a local actor found in the database is trusted to exist without a new lookup.
# Only hits are remembered: a made-up inbox still costs one indexed query each time.
LOCAL_ACTOR_TTL = 60.0


async def _local_actor_exists(ctx: Context, uri: str) -> bool:
    now = time.monotonic()
    until = ctx.local_actors.get(uri)
    if until is not None and until > now:
        return True
    async with ctx.sessions() as session:
        q = select(Actor.id).where(
            Actor.uri == uri, Actor.local.is_(True), Actor.deleted_at.is_(None))
        found = (await session.execute(q)).first() is not None
    if found:
        ctx.local_actors[uri] = now + LOCAL_ACTOR_TTL
    else:
        ctx.local_actors.pop(uri, None)
    return found


async def handle_inbox(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    recipient: str | None = None
    if "name" in request.match_info:
        kind = "u" if request.path.startswith("/u/") else "c"
        base = ctx.uris.user if kind == "u" else ctx.uris.coop
        recipient = base(request.match_info["name"])
    body = await read_limited(request, ctx.settings.max_inbox_body)
    if body is None:
        return json_error(413, "activity too large")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return json_error(400, "body is not valid JSON")
    if not isinstance(doc, dict):
        return json_error(400, "body is not a JSON object")
    try:
        # Only what is checked here; the worker runs the full parse_activity.
        act = parse_envelope(doc)
    except InvalidObject as e:
        return json_error(400, f"not an activity: {e}")
    try:
        sig = parse_request_signature(
            # raw_path: the target as sent (path_qs is decoded and would break signatures).
            request.method, request.raw_path, request.headers, body, base_url=ctx.settings.base_url
        )
    except SignatureError as e:
        return json_error(401, f"signature: {e}")
    if recipient is not None and not await _local_actor_exists(ctx, recipient):
        # Before any key fetch: a POST to a made-up inbox costs us one indexed lookup.
        return json_error(404, "no such actor")
    if act.type == "Delete" and act.object_id == act.actor and sig.key_id not in ctx.key_cache:
        # An account deletion from an actor we never cached: nothing to delete, and fetching
        # a deleted actor's key would only fail (INTEROP §7.16).
        async with ctx.sessions() as session:
            from t3r1_fed.federation.resolver import cached_actor

            if await cached_actor(session, act.actor) is None:
                return web.Response(status=202)
    signer = await signer_of(ctx, sig)
    if signer is None:
        return json_error(401, "signature does not verify")
    if signer != act.actor:
        return json_error(401, "signer is not the activity's actor")
    try:
        # A moderator's cross-host Delete may come to a cooperative's inbox or, as Lemmy
        # delivers to shared inboxes, to ours; never to a member's own inbox.
        check_origins(act, group_inbox=recipient is None or request.path.startswith("/c/"))
    except OriginError as e:
        return json_error(403, str(e))
    try:
        new = await request.app[WRITER].submit(
            Incoming(act.id, act.actor, recipient, body.decode("utf-8", "replace"))
        )
    except Exception:
        return json_error(503, "storage unavailable, retry later", **{"Retry-After": "30"})
    log.info(
        "inbox %s", "accepted" if new else "duplicate",
        extra={"activity": act.id, "type": act.type, "actor": act.actor},
    )
    return web.Response(status=202)
