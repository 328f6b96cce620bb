"""Keyword filters matched as Mastodon does (api/filter_match.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from t3r1_fed.api.filter_match import (
    compile_filter,
    filter_results,
    keyword_regex,
    searchable_text,
)
from t3r1_fed.db.models_api import Filter, FilterKeyword


def make(*keywords: tuple[str, bool], fid: int = 1, action: str = "warn") -> Filter:
    flt = Filter(id=fid, user_id=1, title=f"filtre {fid}", contexts="home public",
                 action=action, expires_at=None, created_at=datetime.now(UTC))
    flt.test_keywords = [  # type: ignore[attr-defined]
        FilterKeyword(id=fid * 10 + i, filter_id=fid, keyword=k, whole_word=w)
        for i, (k, w) in enumerate(keywords)
    ]
    return flt


def results(text: str, *flts: Filter) -> list[dict[str, object]]:
    compiled = [compile_filter(f, f.test_keywords) for f in flts]  # type: ignore[attr-defined]
    return filter_results(compiled, text)


def test_regex_boundaries_only_where_the_keyword_has_word_characters() -> None:
    assert keyword_regex("grève", True) == r"\bgrève\b"
    assert keyword_regex("#grève", True) == r"\#grève\b"
    assert keyword_regex("grève!", True) == r"\bgrève!"
    assert keyword_regex("grève", False) == "grève"


def test_whole_word_is_case_insensitive_and_respects_accented_letters() -> None:
    flt = make(("cis", True))
    assert results("Un résumé précis.", flt) == []  # é is a letter: no boundary before "cis"
    assert results("CIS et trans", flt)[0]["keyword_matches"] == ["CIS"]
    greve = make(("grève", True), fid=2)
    assert results("Appel à la GRÈVE générale", greve)[0]["keyword_matches"] == ["GRÈVE"]
    assert results("les grévistes", greve) == []
    assert results("la greve", greve) == []  # no accent folding, as Mastodon
    decomposed = "la gre\u0300ve"  # e + combining grave accent: same text once normalised
    assert results(decomposed, greve)[0]["keyword_matches"] == ["grève"]
    assert results("grève.", greve) and results("(grève)", greve)


def test_partial_words_and_hashtags() -> None:
    partial = make(("grèv", False))
    assert results("les grévistes", partial) == []
    assert results("la grève", partial)[0]["keyword_matches"] == ["grèv"]
    tag = make(("#manif", True))
    assert results("rdv #manif demain", tag)[0]["keyword_matches"] == ["#manif"]
    assert results("rdv #manifestation", tag) == []
    assert results("manif", tag) == []


def test_result_entities_first_match_per_filter_and_special_characters() -> None:
    a = make(("piquet", True), ("grève", True), fid=1, action="hide")
    b = make(("a.b", False), fid=2)
    c = make(fid=3)  # no keywords: never matches
    got = results("Grève ! Piquet de grève devant l'usine; axb", a, b, c)
    assert len(got) == 1  # "a.b" is literal, not a regex
    r = got[0]
    assert r["keyword_matches"] == ["Grève"] and r["status_matches"] is None
    f = r["filter"]
    assert isinstance(f, dict)
    assert f["id"] == "1" and f["filter_action"] == "hide" and f["context"] == ["home", "public"]
    assert "keywords" not in f and f["expires_at"] is None
    assert results("x a.b y", b)[0]["keyword_matches"] == ["a.b"]
    assert re.compile(keyword_regex("(", True))  # escaped, compiles


def test_searchable_text_covers_cw_content_poll_and_descriptions() -> None:
    text = searchable_text("CW : grève", "<p>Rendez-vous <b>devant</b> l&#39;usine</p>",
                           ["Pour", "Contre"], [None, "Photo du piquet"])
    assert text == "CW : grève\n\nRendez-vous devant l'usine\n\nPour\n\nContre\n\n" \
                   "Photo du piquet"
    assert results(text, make(("piquet", True)))[0]["keyword_matches"] == ["piquet"]
    assert results(searchable_text(None, "<p>usine</p>"), make(("grève", True))) == []


def test_spaces_in_keywords_are_kept() -> None:
    lead = make((" art", False))
    assert results("un artiste", lead)[0]["keyword_matches"] == [" art"]
    assert results("l'artiste", lead) == []
