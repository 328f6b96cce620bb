"""Pure parts of mentions and notifications: Mention tags, poll closing, freshness, and the
`types[]`/`exclude_types[]` selection of the API."""

from __future__ import annotations

from datetime import timedelta

import orjson
from multidict import MultiDict

from t3r1_fed.api.notifications import TYPES, requested_types
from t3r1_fed.db.models import utcnow
from t3r1_fed.notify.mentions import MAX_MENTIONS, mention_hrefs
from t3r1_fed.notify.rules import is_fresh, poll_closed


def test_mention_hrefs_from_hostile_json() -> None:
    doc = {
        "tag": [
            {"type": "Mention", "href": "https://a.example/users/alice", "name": "@alice"},
            {"type": "Hashtag", "href": "https://a.example/tags/greve", "name": "#greve"},
            {"type": ["Mention"], "href": "https://b.example/u/bob"},
            {"type": "Mention", "href": "https://a.example/users/alice"},  # duplicate
            {"type": "Mention", "href": "javascript:alert(1)"},
            {"type": "Mention", "href": {"id": "https://c.example/x"}},
            {"type": "Mention"},
            "https://d.example/not-a-tag",
            None,
        ]
    }
    assert mention_hrefs(doc) == [
        "https://a.example/users/alice", "https://b.example/u/bob", "https://c.example/x"]
    assert mention_hrefs(orjson.dumps(doc).decode()) == mention_hrefs(doc)
    single = {"tag": {"type": "Mention", "href": "https://a.example/users/alice"}}
    assert mention_hrefs(single) == ["https://a.example/users/alice"]
    for bad in (None, "", "not json", "[1, 2]", {"tag": 3}, {"tag": "x"}):
        assert mention_hrefs(bad) == []  # type: ignore[arg-type]


def test_mention_hrefs_are_capped() -> None:
    doc = {"tag": [{"type": "Mention", "href": f"https://x.example/u/{i}"} for i in range(500)]}
    assert len(mention_hrefs(doc)) == MAX_MENTIONS


def test_poll_closed_and_freshness() -> None:
    assert poll_closed('{"type": "Question", "closed": "2026-01-01T00:00:00Z"}')
    assert not poll_closed('{"type": "Question", "endTime": "2026-01-01T00:00:00Z"}')
    assert not poll_closed('{"closed": null}')
    assert not poll_closed(None) and not poll_closed("{") and not poll_closed("[]")
    now = utcnow()
    assert is_fresh(now - timedelta(hours=1), now)
    assert not is_fresh(now - timedelta(days=30), now)
    assert is_fresh(None, now)


def test_requested_types() -> None:
    assert requested_types(MultiDict()) == list(TYPES)
    q = MultiDict([("types[]", "favourite"), ("types[]", "mention"), ("types[]", "bogus")])
    assert requested_types(q) == ["mention", "favourite"]
    q = MultiDict([("exclude_types[]", "mention"), ("exclude_types[]", "follow")])
    assert "mention" not in requested_types(q) and "follow" not in requested_types(q)
    assert requested_types(MultiDict([("types[]", "bogus")])) == []
    q = MultiDict([("types[]", "poll"), ("exclude_types[]", "poll")])
    assert requested_types(q) == []


def test_group_keys_round_trip() -> None:
    from datetime import UTC, datetime

    from t3r1_fed.notify.groups import bucket_of, group_key, parse_group_key

    at = datetime(2026, 11, 28, 19, 30, tzinfo=UTC)
    later = datetime(2026, 11, 28, 23, 59, tzinfo=UTC)
    assert bucket_of(at) == bucket_of(later) and bucket_of(at) % 12 == 0
    assert bucket_of(datetime(2026, 11, 29, 0, 1, tzinfo=UTC)) != bucket_of(later)
    key = group_key(7, "favourite", 1234, at)
    assert key == group_key(9, "favourite", 1234, later) == f"favourite-1234-{bucket_of(at)}"
    assert group_key(7, "favourite", 1234, at, frozenset({"follow"})) == "ungrouped-7"
    assert group_key(7, "mention", 1234, at) == "ungrouped-7"
    assert group_key(7, "follow", None, at).startswith("follow-")
    parsed = parse_group_key(key)
    assert parsed is not None and parsed.kind == "favourite" and parsed.status_id == 1234
    assert parsed.start is not None and parsed.end is not None
    assert parsed.start <= at < parsed.end and parsed.start <= later < parsed.end
    assert parse_group_key("ungrouped-7") is not None
    assert parse_group_key("ungrouped-7").notification_id == 7  # type: ignore[union-attr]
    for bad in ("", "ungrouped-x", "ungrouped--1", "favourite-1-5", "reblog-1",
                "follow-13", "mention-1-0", "favourite-0-0", "follow-99999999999999999999"):
        assert parse_group_key(bad) is None, bad
