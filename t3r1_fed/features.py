"""Feature modules, wired in one place.

Importing a feature module registers what it adds to the shared tables: inbox handlers
(`inbox.dispatch.handles`), ingest hooks (`coops.kinds.on_ingest`) and group collections
(`actors.documents.register_group_collection`). A module that serves HTTP also defines
`routes(router)`. app.py and the worker call `load()`; adding a feature is one line here.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Final

from aiohttp import web

FEATURE_MODULES: Final = (
    "t3r1_fed.inbox.social",
    "t3r1_fed.inbox.content",
    "t3r1_fed.coops.private",  # private coops: members-only forms (ingest hook for replies)
    "t3r1_fed.inbox.faq",
    "t3r1_fed.inbox.moderation",
    "t3r1_fed.handlers.directory",
    "t3r1_fed.inbox.membership",
    "t3r1_fed.handlers.membership",
    "t3r1_fed.inbox.events",
    "t3r1_fed.inbox.group_actions",  # remote moderators' Delete, remote bans, Undo{Join}
    "t3r1_fed.handlers.events",
    "t3r1_fed.inbox.polls",
    "t3r1_fed.handlers.faq",
    "t3r1_fed.coops.documents",
    "t3r1_fed.handlers.media",
    "t3r1_fed.handlers.resources",
    "t3r1_fed.inbox.resources",
    "t3r1_fed.inbox.folders",  # folders renamed, moved, deleted (Update/Move/Delete)
    "t3r1_fed.handlers.forum",  # + coops.forum/news (threads, news, hashtags), inbox.forum
    "t3r1_fed.inbox.backfill",  # FEP-f228: remote threads backfilled (after inbox.forum)
    "t3r1_fed.api.handlers",  # Mastodon client API: OAuth, verify_credentials, instance
    "t3r1_fed.api.media",  # media uploads: POST /api/v2/media, GET/PUT/DELETE /api/v1/media/:id
    "t3r1_fed.api.accounts",  # accounts, follows, relationships, search, follow requests
    "t3r1_fed.api.timelines",  # home (unified feed), public, hashtag, list timelines
    "t3r1_fed.api.statuses",  # post/read/delete/edit statuses, favourites, boosts, polls
    "t3r1_fed.api.notifications",  # notifications (rows written by notify/events.py)
    "t3r1_fed.api.notifications_v2",  # grouped notifications (Mastodon 4.3)
    "t3r1_fed.api.preferences",  # preferences, custom_emojis
    "t3r1_fed.api.lists",  # lists and their accounts
    "t3r1_fed.api.markers",  # reading positions (home, notifications)
    "t3r1_fed.api.filters",  # filters v2 and their keywords, filters v1 (api/filters_v1.py)
    "t3r1_fed.api.apps",  # GET /api/v1/apps/verify_credentials
    "t3r1_fed.streaming.handlers",  # streaming API (WebSocket), LISTEN/NOTIFY on PostgreSQL
    "t3r1_fed.streaming.sse",  # streaming API over HTTP (server-sent events)
)

_loaded: list[ModuleType] = []


def load() -> list[ModuleType]:
    if not _loaded:
        _loaded.extend(importlib.import_module(name) for name in FEATURE_MODULES)
    return _loaded


def add_routes(router: web.UrlDispatcher) -> None:
    for module in load():
        routes = getattr(module, "routes", None)
        if routes is not None:
            routes(router)
