"""Every URL this instance mints is built here, from the settings' scheme and domain.

Ids never change once published, so the shapes below are part of our federation contract
(FEDERATION.md lists them).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import uuid6


def new_id() -> str:
    """A time-ordered id (UUIDv7, 32 hex chars) for objects and activities."""
    return str(uuid6.uuid7().hex)


@dataclass(frozen=True)
class Uris:
    base: str  # scheme://domain, no trailing slash

    # actors
    def user(self, username: str) -> str:
        return f"{self.base}/u/{quote(username)}"

    def coop(self, name: str) -> str:
        return f"{self.base}/c/{quote(name)}"

    @property
    def instance_actor(self) -> str:
        return f"{self.base}/actor"

    @property
    def shared_inbox(self) -> str:
        return f"{self.base}/inbox"

    @staticmethod
    def key_id(actor_uri: str) -> str:
        return f"{actor_uri}#main-key"

    @staticmethod
    def sub(actor_uri: str, what: str) -> str:
        """inbox, outbox, followers, following, featured, moderators … of an actor."""
        return f"{actor_uri}/{what}"

    # objects and activities
    def object(self, oid: str | None = None) -> str:
        return f"{self.base}/o/{oid or new_id()}"

    def activity(self, aid: str | None = None) -> str:
        return f"{self.base}/a/{aid or new_id()}"

    def profile(self, name: str) -> str:
        return f"{self.base}/@{quote(name)}"

    def is_local(self, uri: str) -> bool:
        return uri == self.base or uri.startswith(self.base + "/")

    def local_path(self, uri: str) -> str | None:
        """The path of a local URI, or None for a remote one."""
        if not self.is_local(uri):
            return None
        return urlsplit(uri).path or "/"
