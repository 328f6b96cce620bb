"""What software a remote host runs, from its NodeInfo (`software.name`), cached per host.

Used to choose the form of a private cooperative's redistribution a host can display
(coops/private.py). Looked up as `/.well-known/nodeinfo` → the newest 2.x document it
links, through the safe client (SSRF guard, size and time limits). The answer is kept in
`hosts.software` and refreshed after `SOFTWARE_TTL`; a host whose NodeInfo could not be read
is stored with `software = NULL` and asked again after `FAILURE_TTL`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from yarl import URL

from t3r1_fed.context import Context
from t3r1_fed.db.models import Host, utcnow
from t3r1_fed.federation.http_client import FetchError

log = logging.getLogger("t3r1.software")

SOFTWARE_TTL = timedelta(days=1)
FAILURE_TTL = timedelta(hours=1)
NODEINFO_TIMEOUT = 10.0
NODEINFO_REL = "http://nodeinfo.diaspora.software/ns/schema/2."
MAX_NAME = 64


def nodeinfo_href(index: Mapping[str, Any]) -> str | None:
    """The href of the newest NodeInfo 2.x schema listed in a `/.well-known/nodeinfo` JRD."""
    links = index.get("links")
    if not isinstance(links, list):
        return None
    found: list[tuple[str, str]] = []
    for link in links:
        if not isinstance(link, dict):
            continue
        rel, href = link.get("rel"), link.get("href")
        if isinstance(rel, str) and isinstance(href, str) and rel.startswith(NODEINFO_REL):
            if href.startswith(("https://", "http://")):
                found.append((rel, href))
    return max(found)[1] if found else None


def software_name(doc: Mapping[str, Any]) -> str | None:
    """`software.name` of a NodeInfo document, lower-cased, or None."""
    software = doc.get("software")
    name = software.get("name") if isinstance(software, dict) else None
    if not isinstance(name, str) or not name.strip():
        return None
    return name.strip().lower()[:MAX_NAME]


async def fetch_software(ctx: Context, origin: str) -> str | None:
    """`software.name` served by `origin` (scheme://host[:port]), or None if unavailable."""
    try:
        async with asyncio.timeout(NODEINFO_TIMEOUT):
            index = await ctx.http.get_jrd(f"{origin}/.well-known/nodeinfo")
            href = nodeinfo_href(index)
            if href is None:
                return None
            return software_name(await ctx.http.get_jrd(href))
    except (FetchError, TimeoutError) as e:
        log.info("nodeinfo unavailable", extra={"origin": origin, "error": str(e)})
        return None


def origin_of(url: str) -> str:
    return str(URL(url).origin())


def _stale(row: Host | None, now: datetime) -> bool:
    if row is None or row.software_checked_at is None:
        return True
    ttl = SOFTWARE_TTL if row.software else FAILURE_TTL
    return now - row.software_checked_at > ttl


async def host_software(
    ctx: Context, session: AsyncSession, origins: Mapping[str, str]
) -> dict[str, str | None]:
    """Host (normalised authority) → software name (None: unknown), for `origins`
    (host → origin URL). Stale or unknown hosts are asked concurrently, then cached."""
    hosts = list(origins)
    if not hosts:
        return {}
    rows = {
        h.domain: h
        for h in (await session.execute(select(Host).where(Host.domain.in_(hosts)))).scalars()
    }
    now = utcnow()
    out: dict[str, str | None] = {h: r.software for h, r in rows.items()}
    stale = [h for h in hosts if _stale(rows.get(h), now)]
    if stale:
        names = await asyncio.gather(*(fetch_software(ctx, origins[h]) for h in stale))
        fresh = dict(zip(stale, names, strict=True))
        await _store(ctx, session, fresh.items(), now)
        out.update(fresh)
    return out


async def _store(
    ctx: Context, session: AsyncSession, found: Iterable[tuple[str, str | None]], now: datetime
) -> None:
    table = cast(Table, Host.__table__)
    ins = (postgresql.insert if ctx.is_postgres else sqlite.insert)(table)
    stmt = ins.on_conflict_do_update(
        index_elements=[table.c.domain],
        set_={"software": ins.excluded.software,
              "software_checked_at": ins.excluded.software_checked_at},
    )
    params = [
        {"domain": host, "software": name, "software_checked_at": now,
         "consecutive_failures": 0, "unavailable": False}
        for host, name in found
    ]
    if params:
        await session.execute(stmt, params)
