"""Rails-style nested parameters (api/railsparams.py), as Rack parses them."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from aiohttp import web

from t3r1_fed.api.railsparams import (
    ParamError,
    as_bool,
    as_int,
    as_list,
    as_str,
    parse_nested,
)


def q(text: str) -> dict[str, object]:
    return parse_nested(parse_qsl(text, keep_blank_values=True))


def test_scalars_arrays_and_hashes() -> None:
    assert q("title=Gr%C3%A8ve&exclusive=1") == {"title": "Grève", "exclusive": "1"}
    assert q("context[]=home&context[]=public") == {"context": ["home", "public"]}
    assert q("home[last_read_id]=12&notifications[last_read_id]=7") == {
        "home": {"last_read_id": "12"}, "notifications": {"last_read_id": "7"}}
    assert q("a[b][c]=1&a[b][d]=2") == {"a": {"b": {"c": "1", "d": "2"}}}
    assert q("title=a&title=b") == {"title": "b"}  # the last one wins, as Rack


def test_array_of_hashes_starts_a_new_hash_when_a_key_repeats() -> None:
    got = q("keywords_attributes[][keyword]=gr%C3%A8ve&keywords_attributes[][whole_word]=0"
            "&keywords_attributes[][keyword]=piquet&keywords_attributes[][id]=5"
            "&keywords_attributes[][_destroy]=1")
    assert got == {"keywords_attributes": [
        {"keyword": "grève", "whole_word": "0"},
        {"keyword": "piquet", "id": "5", "_destroy": "1"},
    ]}


def test_indexed_hashes_become_a_list_in_order() -> None:
    got = q("keywords_attributes[0][keyword]=a&keywords_attributes[1][keyword]=b"
            "&keywords_attributes[0][whole_word]=false")
    assert got == {"keywords_attributes": {"0": {"keyword": "a", "whole_word": "false"},
                                           "1": {"keyword": "b"}}}
    assert as_list(got["keywords_attributes"], field="k") == [
        {"keyword": "a", "whole_word": "false"}, {"keyword": "b"}]


@pytest.mark.parametrize("bad", ["a=1&a[b]=2", "a[]=1&a[b]=2", "a[b]=1&a[]=2",
                                 "a=1&a[][b]=2"])
def test_contradicting_shapes_are_refused(bad: str) -> None:
    with pytest.raises(ParamError):
        q(bad)


def test_depth_and_count_are_bounded() -> None:
    with pytest.raises(ParamError):
        q("a" + "[x]" * 40 + "=1")
    with pytest.raises(ParamError):
        parse_nested((f"k{i}", "v") for i in range(5000))


def test_casts_as_activemodel() -> None:
    for false in ("0", "f", "false", "FALSE", "off", "False", False, 0):
        assert as_bool(false, field="x") is False
    for true in ("1", "true", "on", "yes", "t", True, 1):
        assert as_bool(true, field="x") is True
    assert as_bool("", field="x") is None and as_bool(None, field="x") is None
    assert as_list("home", field="x") == ["home"] and as_list(None, field="x") == []
    assert as_str(12, field="x") == "12"
    assert as_int("3600", field="x") == 3600 and as_int("", field="x") is None
    with pytest.raises(web.HTTPUnprocessableEntity):
        as_int("soon", field="x")
    with pytest.raises(web.HTTPBadRequest):
        as_str({"a": 1}, field="x")
    with pytest.raises(web.HTTPBadRequest):
        as_bool(["1"], field="x")
