"""The schema checker itself: it must catch what the API audit looks for."""

from __future__ import annotations

from typing import Any

from tests.unit.mastodon_schema import SCHEMAS, check, spec_of


def _account(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": "1", "username": "alice", "acct": "alice", "url": "https://x.test/@alice",
        "uri": "https://x.test/users/alice", "display_name": "", "note": "",
        "avatar": "https://x.test/a.png", "avatar_static": "https://x.test/a.png",
        "header": "https://x.test/h.png", "header_static": "https://x.test/h.png",
        "locked": False, "fields": [{"name": "Mandat", "value": "x", "verified_at": None}],
        "emojis": [], "bot": False, "group": False, "discoverable": None,
        "created_at": "2026-11-28T00:00:00.000Z", "last_status_at": "2026-11-28",
        "statuses_count": 0, "followers_count": 0, "following_count": 0,
        "hide_collections": False, "indexable": False, "roles": [],
    }
    doc.update(over)
    return doc


def test_a_conforming_account_passes() -> None:
    assert check("Account", _account()) == []


def test_missing_wrong_types_ids_and_dates_are_reported() -> None:
    doc = _account(id=1, locked="no", last_status_at="2026-11-28T10:00:00Z",
                   created_at="yesterday")
    del doc["note"]
    errs = check("Account", doc)
    assert "Account.note: missing" in errs
    assert any(e.startswith("Account.id: expected id") for e in errs)
    assert any(e.startswith("Account.locked: expected bool") for e in errs)
    assert any(e.startswith("Account.last_status_at: expected date|null") for e in errs)
    assert any(e.startswith("Account.created_at: expected datetime") for e in errs)


def test_nested_entities_are_checked() -> None:
    inner = _account(fields=[{"name": "x", "value": "y"}])
    status = {
        "id": "2", "uri": "https://x.test/o/1", "created_at": "2026-11-28T10:00:00.000Z",
        "account": _account(), "content": "", "visibility": "public", "sensitive": False,
        "spoiler_text": "", "media_attachments": [], "mentions": [], "tags": [],
        "emojis": [], "reblogs_count": 0, "favourites_count": 0, "replies_count": 0,
        "url": None, "in_reply_to_id": None, "in_reply_to_account_id": None, "reblog": None,
        "poll": None, "card": None, "language": None, "edited_at": None,
    }
    assert check("Status", status) == []
    boost = {**status, "reblog": {**status, "account": inner, "visibility": "secret"}}
    errs = check("Status", boost)
    assert "Status.reblog.account.fields[0].verified_at: missing" in errs
    assert any(e.startswith("Status.reblog.visibility: expected enum") for e in errs)


def test_every_type_in_the_schemas_is_known() -> None:
    for name in SCHEMAS:
        spec_of(name)  # EXTENDS resolve
        # An empty document: only "missing" problems, never an unknown type.
        assert all(e.endswith("missing") for e in check(name, {}))
