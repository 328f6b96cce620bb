"""Which received activities are moderation (inbox/moderation.py), over Lemmy's documents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from t3r1_fed.inbox.moderation import moderation_kind


@pytest.mark.parametrize(("sample", "kind"), [
    ("community/lock_page.json", "Lock"),
    ("community/lock_note.json", "Lock"),
    ("community/undo_lock_page.json", "Undo:Lock"),
    ("community/add_featured_post.json", "Add"),
    ("community/remove_featured_post.json", "Remove"),
    ("community/add_mod.json", "Add"),
    ("community/remove_mod.json", "Remove"),
    ("deletion/remove_note.json", "Delete"),
    ("deletion/undo_remove_note.json", None),  # restoring a deletion: not supported
    ("community/report_page.json", None),  # Flag: its own handler
    ("block/block_user.json", None),  # bans: coops/bans.py
])
def test_lemmy_moderation_kinds(samples_dir: Path, sample: str, kind: str | None) -> None:
    doc = json.loads((samples_dir / "lemmy" / "activities" / sample).read_text())
    assert moderation_kind(doc) == kind
