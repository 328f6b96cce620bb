"""Pure parts of the directory: accent folding, hashtag keys, skills normalisation."""

from __future__ import annotations

import pytest

from t3r1_fed.coops.directory import DirectoryError, fold, split_skills, tag_key


@pytest.mark.parametrize(("text", "folded"), [
    ("Fédération", "federation"),
    ("  ÉLUE   du  CSE ", "elue du cse"),
    ("Œuvres sociales", "oeuvres sociales"),
    ("Santé-Sécurité", "sante-securite"),
    (None, ""),
])
def test_fold(text: str | None, folded: str) -> None:
    assert fold(text) == folded


def test_tag_key_ignores_hash_case_accents_and_separators() -> None:
    assert tag_key("#Grève") == tag_key("greve") == "greve"
    assert tag_key("Droit du travail") == tag_key("#DroitDuTravail")
    assert tag_key("#") == ""


def test_split_skills_dedupes_ignoring_accents_and_caps_input() -> None:
    assert split_skills(" Négociation , negociation,,  droit   du travail") == [
        "Négociation", "droit du travail"]
    assert split_skills(["A", "b"]) == ["A", "b"]
    with pytest.raises(DirectoryError):
        split_skills(",".join(f"s{i}" for i in range(31)))
    with pytest.raises(DirectoryError):
        split_skills("x" * 65)
