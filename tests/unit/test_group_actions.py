"""The origin exception for a moderator's cross-host Delete (inbox/origin.py): only to a
local cooperative's inbox or the shared inbox, only for Delete, never for the activity id."""

from __future__ import annotations

from typing import Any

import pytest

from t3r1_fed.inbox.origin import OriginError, check_origins
from t3r1_fed.vocab.normalize import parse_activity

MOD = "https://b.example/u/modo"
POST = "https://c.example/notes/1"


def act(type_: str, obj: Any, *, id_: str = "https://b.example/activities/1") -> Any:
    return parse_activity({"id": id_, "type": type_, "actor": MOD, "object": obj})


def test_cross_host_delete_passes_only_for_a_group_inbox() -> None:
    for obj in (POST, {"id": POST, "type": "Tombstone"}):
        with pytest.raises(OriginError, match="object id"):
            check_origins(act("Delete", obj))
        check_origins(act("Delete", obj), group_inbox=True)


@pytest.mark.parametrize("kind", ["Create", "Update"])
def test_other_content_activities_stay_strict(kind: str) -> None:
    note = {"id": POST, "type": "Note", "attributedTo": MOD, "content": "x"}
    with pytest.raises(OriginError, match="object id"):
        check_origins(act(kind, note), group_inbox=True)


def test_activity_id_stays_strict() -> None:
    with pytest.raises(OriginError, match="activity id"):
        check_origins(act("Delete", POST, id_="https://c.example/activities/1"),
                      group_inbox=True)


def test_undo_of_someone_elses_activity_stays_strict() -> None:
    inner = {"id": "https://c.example/a/1", "type": "Delete", "actor": "https://c.example/u/x"}
    with pytest.raises(OriginError):
        check_origins(act("Undo", inner), group_inbox=True)
