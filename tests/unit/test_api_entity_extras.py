"""Account and Status extras taken from remote JSON: fields and custom emojis."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from t3r1_fed.api.entities import custom_emojis, remote_fields
from t3r1_fed.db import ids
from tests.unit.mastodon_schema import check


def test_remote_fields_are_sanitised_and_capped() -> None:
    doc = {"attachment": [
        {"type": "PropertyValue", "name": "Site", "value": '<a href="https://x.test">x</a>'
         '<script>alert(1)</script>'},
        {"type": "PropertyValue", "name": "", "value": "sans nom"},
        {"type": "Note", "name": "pas un champ", "value": "x"},
    ] + [{"type": "PropertyValue", "name": f"n{i}", "value": "v"} for i in range(40)]}
    fields = remote_fields(doc)
    assert fields[0]["name"] == "Site" and "<script" not in fields[0]["value"]
    assert "https://x.test" in fields[0]["value"] and fields[0]["verified_at"] is None
    assert len(fields) == 16
    assert all(check("Field", f) == [] for f in fields)
    assert remote_fields({"attachment": "nope"}) == []


def test_custom_emojis_from_emoji_tags() -> None:
    raw = orjson.dumps({"tag": [
        {"type": "Emoji", "name": ":greve:", "icon": {"url": "https://x.test/e/greve.png"}},
        {"type": "Emoji", "name": ":bad code!:", "icon": {"url": "https://x.test/e.png"}},
        {"type": "Emoji", "name": ":js:", "icon": {"url": "javascript:alert(1)"}},
        {"type": "Hashtag", "name": "#greve"},
    ]}).decode()
    emojis = custom_emojis(raw)
    assert [e["shortcode"] for e in emojis] == ["greve"]
    assert check("CustomEmoji", emojis[0]) == []
    assert custom_emojis(None) == [] and custom_emojis("{not json") == []


def test_sid_time_is_when_the_id_was_minted() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    sid = ids.object_sid()
    assert before <= ids.sid_time(sid).replace(microsecond=0) <= datetime.now(UTC)
