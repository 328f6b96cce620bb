"""Mastodon scopes: `read write follow push`, granular `read:*`/`write:*`, `profile`."""

from __future__ import annotations

from typing import Final

TOP: Final = ("read", "write", "follow", "push")
READ: Final = (
    "accounts", "blocks", "bookmarks", "favourites", "filters", "follows", "lists",
    "mutes", "notifications", "search", "statuses",
)
WRITE: Final = (
    "accounts", "blocks", "bookmarks", "conversations", "favourites", "filters", "follows",
    "lists", "media", "mutes", "notifications", "reports", "statuses",
)
# `follow` is Mastodon's legacy scope covering these granular ones.
FOLLOW: Final = frozenset(
    {"read:blocks", "write:blocks", "read:follows", "write:follows", "read:mutes", "write:mutes"}
)
KNOWN: Final = frozenset(
    (*TOP, "profile", *(f"read:{s}" for s in READ), *(f"write:{s}" for s in WRITE))
)
DEFAULT: Final = "read"


class ScopeError(ValueError):
    pass


def parse(raw: str | None, *, default: str = DEFAULT) -> tuple[str, ...]:
    """Scopes as given (space- or `+`-separated), known only, order kept, no duplicates."""
    text = (raw or "").replace("+", " ").strip() or default
    out: list[str] = []
    for scope in text.split():
        if scope not in KNOWN:
            raise ScopeError(f"unknown scope {scope!r}")
        if scope not in out:
            out.append(scope)
    return tuple(out)


def allows(granted: tuple[str, ...] | frozenset[str], needed: str) -> bool:
    """`read` implies `read:*`, `write` implies `write:*`, `follow` its granular scopes;
    `profile` (verify_credentials only) is also granted by `read:accounts` and `read`."""
    if needed in granted:
        return True
    if needed == "profile":
        return allows(granted, "read:accounts")
    top = needed.split(":", 1)[0]
    if ":" in needed and top in granted:
        return True
    return needed in FOLLOW and "follow" in granted


def subset(requested: tuple[str, ...], registered: tuple[str, ...]) -> bool:
    return all(allows(registered, s) for s in requested)
