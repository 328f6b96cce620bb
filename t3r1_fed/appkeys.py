"""Typed keys for the aiohttp application state."""

from __future__ import annotations

from aiohttp import web

from t3r1_fed.context import Context
from t3r1_fed.inbox.writer import InboxWriter

CTX = web.AppKey("ctx", Context)
WRITER = web.AppKey("inbox_writer", InboxWriter)
