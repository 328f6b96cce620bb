"""Route registration shared by the client API modules."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def get(router: web.UrlDispatcher, path: str, handler: Handler) -> None:
    """Both `path` and `path/`: Rails routes ignore a trailing slash and clients rely on it
    (Mastodon.py requests `/api/v1/instance/`)."""
    router.add_get(path, handler)
    router.add_get(path + "/", handler)


def add(router: web.UrlDispatcher, method: str, path: str, handler: Handler) -> None:
    """A non-GET route, with and without a trailing slash."""
    router.add_route(method, path, handler)
    router.add_route(method, path + "/", handler)
