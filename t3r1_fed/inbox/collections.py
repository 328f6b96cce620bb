"""`Add` and `Remove` routed by the collection they target (faq, featured, resources …).

Several features receive `Add`/`Remove` (FEP-400e FAQ entries, Lemmy's featured posts and
moderators, Mobilizon resources): the dispatch table keys on (activity, object type), which
cannot tell them apart, so this module owns `Add`/`Remove` and hands each one to the
handler registered for the *name* of the targeted collection:

    @on_collection("Add", "faq")
    async def faq_added(inb: Inbound, group: Actor, name: str) -> str: ...

The owner is looked up among the activity's actor, the target's `attributedTo`, the
`audience` and the target itself (or the actor whose id it sits under, or whose `featured`
it is); the target must be the collection that owner publishes under that name (in its
actor document, at the top level or under `endpoints`), or the owner itself, which routes
under the name `group` (Lemmy's `Remove{target: community}`). Each handler still decides
who may change its collection (the group itself, its moderators …).

The table is filled by `on_collection` at import time and read at dispatch time, so the
order in which feature modules are imported does not matter: this module alone registers
the `Add`/`Remove` dispatch entries, and no other module may take them over.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from sqlalchemy import or_, select

from t3r1_fed.actors.documents import GROUP_COLLECTIONS
from t3r1_fed.coops.moderators import moderators_url
from t3r1_fed.db.models import Actor
from t3r1_fed.inbox.dispatch import ANY, Ignored, Inbound, handles
from t3r1_fed.vocab.normalize import id_of

CollectionHandler = Callable[[Inbound, Actor, str], Awaitable[str]]
_HANDLERS: dict[tuple[str, str], CollectionHandler] = {}
# Collections every Group has besides the registered ones.
_CORE = ("featured", "moderators", "followers", "outbox")
# The name under which a target that is the owner itself is routed.
ITSELF = "group"


def on_collection(activity: str, name: str) -> Callable[[CollectionHandler], CollectionHandler]:
    def register(fn: CollectionHandler) -> CollectionHandler:
        _HANDLERS[(activity, name)] = fn
        return fn

    return register


def collections_of(actor: Actor) -> dict[str, str]:
    """name → URL of the collections `actor` publishes (local: our routes; remote: its JSON)."""
    if actor.local:
        names = (*_CORE, *GROUP_COLLECTIONS)
        return {n: f"{actor.uri}/{GROUP_COLLECTIONS.get(n, n)}" for n in names}
    found: dict[str, str] = {}
    try:
        doc = orjson.loads(actor.raw or "{}")
    except orjson.JSONDecodeError:
        return found
    if not isinstance(doc, dict):
        return found
    endpoints = doc.get("endpoints")
    for source in (endpoints if isinstance(endpoints, dict) else {}, doc):
        for key, value in source.items():
            url = id_of(value)
            if isinstance(url, str) and url.startswith(("https://", "http://")):
                found[key] = url
    if actor.featured_url:
        found["featured"] = actor.featured_url
    if "moderators" not in found and actor.type == "Group":
        mods = moderators_url(actor)  # Lemmy names it only as the Group's `attributedTo`
        if mods:
            found["moderators"] = mods
    return found


async def _owner_and_name(inb: Inbound, target: str) -> tuple[Actor, str]:
    raw_target = inb.raw.get("target")
    candidates = [inb.act.actor, *inb.act.audience, target, target.rsplit("/", 1)[0]]
    if isinstance(raw_target, dict):
        owner = id_of(raw_target.get("attributedTo"))
        if owner:
            candidates.append(owner)
    q = select(Actor).where(
        or_(Actor.uri.in_(candidates), Actor.featured_url == target), Actor.deleted_at.is_(None)
    )
    for actor in (await inb.session.execute(q)).scalars():
        if actor.uri == target:
            return actor, ITSELF
        names = [name for name, url in collections_of(actor).items() if url == target]
        if names:
            # a URL listed under several keys (Lemmy's `attributedTo` is its moderators
            # collection): the name something handles wins
            handled = [n for n in names if (inb.act.type, n) in _HANDLERS]
            return actor, (handled or names)[0]
    raise Ignored("target is not a known collection")


async def _route(inb: Inbound) -> str:
    target = inb.act.target
    if not target:
        raise Ignored(f"{inb.act.type} without target")
    owner, name = await _owner_and_name(inb, target)
    fn = _HANDLERS.get((inb.act.type, name))
    if fn is None:
        raise Ignored(f"{inb.act.type} to the {name} collection not handled")
    return await fn(inb, owner, name)


@handles("Add", ANY)
async def on_add(inb: Inbound) -> str:
    return await _route(inb)


@handles("Remove", ANY)
async def on_remove(inb: Inbound) -> str:
    return await _route(inb)


def target_id(raw: dict[str, Any]) -> str | None:
    """The collection named by an object's FEP-400e `target` (an id or an embedded stub)."""
    return id_of(raw.get("target"))
