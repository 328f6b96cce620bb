"""Origin checks on inbound activities (INTEROP.md §7 items 3, 4, 11): pure functions.

Hosts are normalised before any comparison, so `EXAMPLE.org.` and `example.org` match and
an IDN cannot masquerade as another host.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from t3r1_fed.federation.hosts import host_of
from t3r1_fed.vocab.normalize import Activity, Envelope, as_list, id_of

CONTENT_CREATES = frozenset({"Create", "Update"})


class OriginError(ValueError):
    """The activity claims something its sender may not claim; answered 403."""


# The few actors that post are seen again and again: their host is computed once (host_of
# is pure; a URL it rejects raises and is not cached).
_actor_host_of = functools.lru_cache(maxsize=4096)(host_of)


def _host(url: str, what: str, of: Callable[[str], str] = host_of) -> str:
    try:
        return of(url)
    except ValueError as e:
        raise OriginError(f"{what} is not an http(s) URL") from e


def check_origins(act: Activity | Envelope, *, group_inbox: bool = False) -> None:
    """`group_inbox`: POSTed to a local cooperative's own inbox or to the shared inbox,
    where a moderator on another host may `Delete` a post from a third host (Lemmy, which
    prefers shared inboxes); the worker then accepts it only from a moderator of the
    cooperative the post is in (inbox/group_actions.py).
    """
    actor_host = _host(act.actor, "actor", _actor_host_of)
    if _host(act.id, "activity id") != actor_host:
        raise OriginError("activity id is not on the actor's host")
    obj = act.object
    if act.type in CONTENT_CREATES or act.type == "Delete":
        oid = act.object_id
        if oid is None:
            raise OriginError("activity has no object id")
        cross_host_ok = group_inbox and act.type == "Delete" and oid != act.actor
        if _host(oid, "object id") != actor_host and not cross_host_ok:
            raise OriginError("object id is not on the actor's host")
        if isinstance(obj, dict) and act.type in CONTENT_CREATES:
            for attributed in as_list(obj.get("attributedTo")):
                aid = id_of(attributed)
                if aid is not None and _host(aid, "attributedTo") != actor_host:
                    raise OriginError("attributedTo is not on the object's host")
    if act.type == "Undo" and isinstance(obj, dict):
        inner_actor = id_of(obj.get("actor"))
        if inner_actor is not None and inner_actor != act.actor:
            raise OriginError("cannot undo another actor's activity")
        if act.object_id and _host(act.object_id, "object id") != actor_host:
            raise OriginError("undone activity is not on the actor's host")
