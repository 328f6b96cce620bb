"""Where uploaded files live: a small protocol and the local-disk implementation.

Keys are minted by us (`new_key`): 32 random hex characters and a fixed suffix chosen from
the type *detected from the content*. Nothing a client or a remote server sends (filename,
extension, URL) ever becomes part of a key or a path, so keys are also unguessable, which is
what private cooperatives' media rely on besides the access check (GROUPS.md).

An S3-compatible backend implements the same protocol later: `put` maps to PutObject (with
`ContentType`), `get` to GetObject, `delete` to DeleteObject, `size` to HeadObject's
`ContentLength`; keys are valid object names as they are. Serving stays in our handler
(handlers/media.py), which checks access before streaming, so a bucket can stay private.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from pathlib import Path
from typing import Final, Protocol

KEY_RE: Final = re.compile(r"[0-9a-f]{32}\.[a-z0-9]{2,5}")


class StorageError(ValueError):
    """A key is malformed or the file is missing."""


def new_key(suffix: str) -> str:
    """A fresh random key with the given suffix (from the detected type, e.g. "png")."""
    key = f"{secrets.token_hex(16)}.{suffix}"
    if not KEY_RE.fullmatch(key):
        raise StorageError(f"bad suffix {suffix!r}")
    return key


def check_key(key: str) -> str:
    if not KEY_RE.fullmatch(key):
        raise StorageError("malformed media key")
    return key


class MediaStorage(Protocol):
    """A flat store of immutable blobs by key."""

    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...

    async def size(self, key: str) -> int | None:
        """The stored size in bytes, or None if there is no such key."""
        ...


class LocalStorage:
    """Files under `root`, fanned out by the key's first two characters (aa/aabb….png).

    Writes go to a temporary file renamed into place, so a reader never sees half a file.
    File I/O runs in a thread: the event loop never waits on the disk.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, key: str) -> Path:
        check_key(key)
        return self.root / key[:2] / key

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self.path_of(key)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{key}.{secrets.token_hex(4)}.tmp")
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)

        await asyncio.to_thread(write)

    async def get(self, key: str) -> bytes:
        path = self.path_of(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as e:
            raise StorageError("no such media") from e

    async def delete(self, key: str) -> None:
        path = self.path_of(key)
        await asyncio.to_thread(path.unlink, missing_ok=True)

    async def size(self, key: str) -> int | None:
        path = self.path_of(key)
        try:
            return (await asyncio.to_thread(path.stat)).st_size
        except FileNotFoundError:
            return None
