"""`PATCH /api/v1/accounts/update_credentials`: a member edits their public profile.

Handled: `display_name` (≤ 30 characters, as Mastodon), `note` (plain text, ≤ 500, stored as
safe HTML), `locked` (unlocking accepts the pending follow requests, as Mastodon does) and
`discoverable`. Followers' servers get an `Update{Person}` so they refetch the profile.
What has no storage here yet — avatar and header uploads, free profile fields (the
directory profile holds the published fields), posting defaults — is refused with 422
when a value differs from what the API reports, never silently dropped.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from multidict import MultiDict
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from t3r1_fed.api import entities
from t3r1_fed.api.routing import add
from t3r1_fed.api.viewer import FALSE, flag, required_viewer
from t3r1_fed.appkeys import CTX
from t3r1_fed.context import Context
from t3r1_fed.coops.directory import person_document
from t3r1_fed.coops.membership import answer_request
from t3r1_fed.db.models import Actor, Follow
from t3r1_fed.httputil import json_response
from t3r1_fed.oauth.auth import json_exc
from t3r1_fed.outbox.publish import followers_of, publish
from t3r1_fed.vocab.context import AS_PUBLIC
from t3r1_fed.vocab.sanitize import text_to_html

MAX_DISPLAY_NAME = 30
MAX_NOTE = 500
# Parameters we cannot store: accepted only with the value the API already reports.
FIXED = {"bot": "false", "hide_collections": "false", "indexable": "false",
         "source[privacy]": "public", "source[sensitive]": "false", "source[language]": "fr"}


def _invalid(message: str) -> web.HTTPException:
    return json_exc(web.HTTPUnprocessableEntity, f"Validation failed: {message}")


async def _read(request: web.Request) -> tuple[MultiDict[str], bool]:
    """Flat parameters (`a[b][c]` keys, as Rails forms) and whether files were sent."""
    out: MultiDict[str] = MultiDict()
    if request.content_type == "application/json":
        try:
            body: Any = orjson.loads(await request.read() or b"{}")
        except orjson.JSONDecodeError:
            raise json_exc(web.HTTPBadRequest, "The request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise json_exc(web.HTTPBadRequest, "The request body must be a JSON object")

        def flatten(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    flatten(f"{prefix}[{k}]" if prefix else str(k), v)
            elif isinstance(value, list):
                for i, v in enumerate(value):
                    flatten(f"{prefix}[{i}]", v)
            elif isinstance(value, bool):
                out.add(prefix, "true" if value else "false")
            elif value is not None:
                out.add(prefix, str(value))

        flatten("", body)
        return out, False
    files = False
    for k, v in (await request.post()).items():
        if isinstance(v, str):
            out.add(k, v)
        else:
            files = True
    return out, files


def _check_unsupported(values: MultiDict[str], files: bool) -> None:
    if files or values.get("avatar") or values.get("header"):
        raise _invalid("avatar and header uploads are not supported yet")
    for key, value in values.items():
        if key.startswith("fields_attributes[") and value.strip():
            raise _invalid("free profile fields are not supported; the directory profile "
                           "holds the published fields")
    for key, expected in FIXED.items():
        raw = values.get(key)
        if raw is None or not raw.strip():
            continue
        same = (raw.strip().lower() in FALSE) if expected == "false" else raw.strip() == expected
        if not same:
            raise _invalid(f"{key} cannot be changed here")


async def _accept_pending(ctx: Context, session: AsyncSession, me: Actor) -> None:
    """Unlocking an account accepts the follow requests waiting for it (as Mastodon)."""
    rows = (await session.execute(
        select(Follow, Actor).join(Actor, Actor.id == Follow.follower_id)
        .where(Follow.followee_id == me.id, Follow.state == "pending")
    )).all()
    for follow, follower in rows:
        follow.state = "accepted"
        await answer_request(ctx, session, me, follower, follow, "Accept")


async def update_credentials(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    values, files = await _read(request)
    _check_unsupported(values, files)
    name = values.get("display_name")
    note = values.get("note")
    locked = flag(values, "locked")
    discoverable = flag(values, "discoverable")
    if name is not None and len(name.strip()) > MAX_DISPLAY_NAME:
        raise _invalid(f"Display name is too long (maximum is {MAX_DISPLAY_NAME} characters)")
    if note is not None and len(note.strip()) > MAX_NOTE:
        raise _invalid(f"Note is too long (maximum is {MAX_NOTE} characters)")
    async with ctx.sessions() as s, s.begin():
        viewer = await required_viewer(request, s, "write:accounts")
        me = viewer.actor
        before = (me.name, me.summary, me.manually_approves_followers, me.discoverable)
        if name is not None:
            me.name = " ".join(name.split()) or None
        if note is not None:
            me.summary = text_to_html(note) or None
        if discoverable is not None:
            me.discoverable = discoverable
        if locked is not None:
            if before[2] and not locked:
                await _accept_pending(ctx, s, me)
            me.manually_approves_followers = locked
        if (me.name, me.summary, me.manually_approves_followers, me.discoverable) != before:
            await s.flush()
            doc = await person_document(ctx, s, me)
            update = {"id": ctx.uris.activity(), "type": "Update", "actor": me.uri,
                      "object": {k: v for k, v in doc.items() if k != "@context"},
                      "to": [AS_PUBLIC]}
            await publish(ctx, s, me, update, recipients=await followers_of(s, me.id))
        out = await entities.credential_account(s, ctx.settings, me, viewer.user)
    return json_response(out)


def routes(router: web.UrlDispatcher) -> None:
    add(router, "PATCH", "/api/v1/accounts/update_credentials", update_credentials)
