"""Pure parts of posting from the client API: addressing per visibility, input checks,
what a cooperative's privacy allows."""

from __future__ import annotations

import pytest

from t3r1_fed.api.compose import (
    ComposeError,
    PollSpec,
    StatusInput,
    check_input,
    coop_visibility_error,
    remote_group_addressing,
)
from t3r1_fed.db.models import Actor
from t3r1_fed.outbox.personal import addressing
from t3r1_fed.vocab.context import AS_PUBLIC

FOLLOWERS = "https://a.example/u/alice/followers"
BOB = "https://b.example/u/bob"


def test_personal_addressing_is_mastodons() -> None:
    assert addressing("public", FOLLOWERS, [BOB]) == ([AS_PUBLIC], [FOLLOWERS, BOB])
    assert addressing("unlisted", FOLLOWERS, [BOB]) == ([FOLLOWERS], [AS_PUBLIC, BOB])
    assert addressing("private", FOLLOWERS, [BOB, BOB]) == ([FOLLOWERS], [BOB])
    assert addressing("direct", FOLLOWERS, [BOB]) == ([BOB], [])
    with pytest.raises(ValueError):
        addressing("everyone", FOLLOWERS, [])


def test_remote_group_addressing() -> None:
    author = Actor(uri="https://a.example/u/alice", followers_url=FOLLOWERS)
    group = Actor(uri="https://b.example/c/fed", followers_url="https://b.example/c/fed/f")
    assert remote_group_addressing(author, group, private=False) == (
        [AS_PUBLIC], [FOLLOWERS, group.uri], "public")
    assert remote_group_addressing(author, group, private=False, unlisted=True) == (
        [group.uri], [AS_PUBLIC, FOLLOWERS], "unlisted")
    assert remote_group_addressing(author, group, private=True) == (
        [group.uri, "https://b.example/c/fed/f"], [], "private")


def test_coop_visibility() -> None:
    assert coop_visibility_error(False, "public", "c") is None
    assert coop_visibility_error(False, "unlisted", "c") is None
    assert "public cooperative" in (coop_visibility_error(False, "direct", "c") or "")
    assert coop_visibility_error(True, "private", "c") is None
    assert coop_visibility_error(True, "direct", "c") is None
    assert "private cooperative" in (coop_visibility_error(True, "public", "c") or "")


@pytest.mark.parametrize("req", [
    StatusInput(text=""),
    StatusInput(text="x", visibility="friends"),
    StatusInput(text="x" * 5001),
    StatusInput(text="x", spoiler_text="y" * 501),
    StatusInput(text="x", poll=PollSpec(["a"], 3600)),
    StatusInput(text="x", poll=PollSpec(["a", "a"], 3600)),
    StatusInput(text="x", poll=PollSpec(["a", "b"], 10)),
    StatusInput(text="x", poll=PollSpec(["a", "b" * 101], 3600)),
])
def test_bad_input_is_refused(req: StatusInput) -> None:
    with pytest.raises(ComposeError):
        check_input(req)


def test_good_input_passes() -> None:
    check_input(StatusInput(text="Grève", visibility="unlisted"))
    check_input(StatusInput(text="Quand ?", poll=PollSpec(["lundi", "mardi"], 300, True)))
