"""The inbox dispatch table: which handler each (activity, object) pair reaches.

`features.load()` registers the handlers (social.py, content.py), as in production.
"""

from __future__ import annotations

from typing import Any

import pytest

from t3r1_fed import features
from t3r1_fed.inbox.dispatch import ANY, TABLE, Ignored, Inbound, dispatch, lookup
from t3r1_fed.vocab.normalize import Activity, parse_activity

features.load()  # registers every handler, as app.py and the worker do

A = "https://remote.example"


def activity(type_: str, obj: Any = f"{A}/objects/1") -> Activity:
    return parse_activity({"id": f"{A}/activities/1", "type": type_,
                           "actor": f"{A}/users/mona", "object": obj})


def embedded(type_: str, **extra: Any) -> dict[str, Any]:
    return {"id": f"{A}/things/1", "type": type_, **extra}


def inbound(act: Activity) -> Inbound:
    # Unknown pairs never reach a handler: no context or session is needed.
    return Inbound(ctx=None, session=None, act=act, recipient=None)  # type: ignore[arg-type]


def handler_name(act: Activity) -> str | None:
    fn = lookup(act)
    return fn.__name__ if fn is not None else None


@pytest.mark.parametrize(("act", "expected"), [
    # Follow and its answers
    (activity("Follow"), "on_follow"),
    (activity("Follow", embedded("Group")), "on_follow"),
    (activity("Accept", embedded("Follow")), "on_accept"),
    (activity("Accept"), "on_accept"),  # by reference (Lemmy, Mitra)
    (activity("Reject", embedded("Follow")), "on_reject"),
    (activity("Reject"), "on_reject"),
    # Undo of each kind, embedded or by reference
    (activity("Undo", embedded("Follow")), "on_undo"),
    (activity("Undo", embedded("Like")), "on_undo"),
    (activity("Undo", embedded("Announce")), "on_undo"),
    (activity("Undo"), "on_undo"),
    # Create of content
    (activity("Create", embedded("Note")), "on_create"),
    (activity("Create", embedded("Article")), "on_create"),
    (activity("Create", embedded("Page")), "on_create"),
    (activity("Create"), "on_create"),  # by reference: fetched from origin
    # Update of content and of actors
    (activity("Update", embedded("Note")), "on_update_object"),
    (activity("Update", embedded("Article")), "on_update_object"),
    (activity("Update", embedded("Page")), "on_update_object"),
    (activity("Update", embedded("Question")), "on_update_object"),
    (activity("Update", embedded("Person")), "on_update_actor"),
    (activity("Update", embedded("Group")), "on_update_actor"),
    (activity("Update", embedded("Service")), "on_update_actor"),
    # Delete, Announce, Like
    (activity("Delete"), "on_delete"),
    (activity("Delete", embedded("Tombstone")), "on_delete"),
    (activity("Announce"), "on_announce"),
    (activity("Announce", embedded("Create")), "on_announce"),  # FEP-1b12
    (activity("Like"), "on_like"),
    # Bans by a remote group, Undo{Join} as a Leave (inbox/group_actions.py)
    (activity("Block", embedded("Person")), "on_block"),
    (activity("Block"), "on_block"),
    (activity("Undo", embedded("Block")), "on_undo_block"),
    (activity("Undo", embedded("Join")), "on_undo_join"),
], ids=lambda v: v if isinstance(v, str) else f"{v.type}/{v.object_type or '-'}")
def test_lookup(act: Activity, expected: str) -> None:
    assert handler_name(act) == expected


def test_table_has_every_documented_pair() -> None:
    names = {pair: fn.__name__ for pair, fn in TABLE.items()}
    assert names[("Follow", ANY)] == "on_follow"
    assert names[("Accept", "Follow")] == names[("Accept", ANY)] == "on_accept"
    assert names[("Reject", "Follow")] == names[("Reject", ANY)] == "on_reject"
    assert names[("Undo", ANY)] == "on_undo"
    assert names[("Create", ANY)] == "on_create"
    for kind in ("Note", "Article", "Page"):
        assert names[("Update", kind)] == "on_update_object"
    for kind in ("Person", "Group"):
        assert names[("Update", kind)] == "on_update_actor"
    assert names[("Delete", ANY)] == "on_delete"
    assert names[("Announce", ANY)] == "on_announce"
    assert names[("Like", ANY)] == "on_like"


UNSUPPORTED = [
    (activity("Move", embedded("Person")), "unsupported: Move/Person"),
    (activity("Move"), "unsupported: Move/-"),
    (activity("Update", embedded("Tombstone")), "unsupported: Update/Tombstone"),
    (activity("Update"), "unsupported: Update/-"),  # an Update must embed what changed
    (activity("Listen", embedded("Person")), "unsupported: Listen/Person"),
    (activity("Dislike"), "unsupported: Dislike/-"),
    (activity("EmojiReact"), "unsupported: EmojiReact/-"),
]


@pytest.mark.parametrize(("act", "result"), UNSUPPORTED, ids=[r for _, r in UNSUPPORTED])
async def test_unknown_pairs_are_ignored(act: Activity, result: str) -> None:
    assert lookup(act) is None
    assert await dispatch(inbound(act)) == ("ignored", result)


async def test_dispatch_states(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Inbound] = []

    async def fine(inb: Inbound) -> str:
        calls.append(inb)
        return "did it"

    async def no(inb: Inbound) -> str:
        raise Ignored("not for us")

    async def silent(inb: Inbound) -> str:
        raise Ignored

    async def broken(inb: Inbound) -> str:
        raise RuntimeError("database down")

    for kind, fn in (("Fine", fine), ("No", no), ("Silent", silent), ("Broken", broken)):
        monkeypatch.setitem(TABLE, (kind, ANY), fn)

    inb = inbound(activity("Fine"))
    assert await dispatch(inb) == ("done", "did it")
    assert calls == [inb]
    assert await dispatch(inbound(activity("No"))) == ("ignored", "not for us")
    assert await dispatch(inbound(activity("Silent"))) == ("ignored", "ignored")
    # Anything but Ignored is a failure for the worker to retry: dispatch lets it through.
    with pytest.raises(RuntimeError, match="database down"):
        await dispatch(inbound(activity("Broken")))


def test_exact_type_wins_over_wildcard(monkeypatch: pytest.MonkeyPatch) -> None:
    async def special(inb: Inbound) -> str:
        return "special"

    monkeypatch.setitem(TABLE, ("Create", "Event"), special)
    assert lookup(activity("Create", embedded("Event"))) is special
    assert handler_name(activity("Create", embedded("Note"))) == "on_create"
