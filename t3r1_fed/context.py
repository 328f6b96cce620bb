"""The per-instance runtime: everything a handler or worker needs, built from Settings.

No global mutable state: tests start several instances in one process, each with its own
Context.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from t3r1_fed.config import Settings
from t3r1_fed.db import ids
from t3r1_fed.db.engine import make_engine, make_sessionmaker
from t3r1_fed.db.models import IdSlot
from t3r1_fed.federation.http_client import SafeHttpClient
from t3r1_fed.media.storage import LocalStorage, MediaStorage
from t3r1_fed.notify import events as notify_events
from t3r1_fed.streaming import events as stream_events
from t3r1_fed.uris import Uris


@dataclass
class Context:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    uris: Uris
    http: SafeHttpClient
    # Uploaded files (media/storage.py); an S3-compatible backend can replace it.
    media: MediaStorage
    # Set when new queue rows are committed in this process, so the worker need not poll.
    wake_deliveries: asyncio.Event = field(default_factory=asyncio.Event)
    wake_inbox: asyncio.Event = field(default_factory=asyncio.Event)
    # key id → (owner actor URI, public key PEM): verified keys, so the inbox's hot path does
    # not touch the database. Entries are replaced when a key is refetched.
    key_cache: dict[str, tuple[str, str]] = field(default_factory=dict)
    # local actor URI → time.monotonic() until which it is known to exist, so an inbox POST
    # to a local actor does not query the database each time (inbox/receive.py).
    local_actors: dict[str, float] = field(default_factory=dict)
    # remote group URI → (time.monotonic() expiry, its moderators' URIs), fetched signed
    # from the group's moderators collection (inbox/moderation.py), kept briefly.
    moderators_cache: dict[str, tuple[float, frozenset[str]]] = field(default_factory=dict)

    @classmethod
    def create(cls, settings: Settings) -> Context:
        engine = make_engine(settings.effective_database_url)
        stream_events.install()  # streaming events too, in every process (streaming/events.py)
        return cls(
            settings=settings,
            engine=engine,
            # Mentions and notifications follow every flush (notify/events.py).
            sessions=notify_events.install(make_sessionmaker(engine)),
            uris=Uris(settings.base_url),
            http=SafeHttpClient(
                allow_private=settings.allow_private_networks,
                allow_http=settings.allow_http,
                user_agent=settings.user_agent,
            ),
            media=LocalStorage(settings.media_dir),
        )

    async def start(self) -> None:
        await self.http.start()
        await self.claim_id_slot()

    async def claim_id_slot(self) -> None:
        """A slot of its own in status ids for this process (db/ids.py)."""
        async with self.sessions() as s, s.begin():
            row = IdSlot()
            s.add(row)
            await s.flush()
            ids.GENERATOR.set_slot(row.id)

    async def close(self) -> None:
        await self.http.close()
        await self.engine.dispose()

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"
