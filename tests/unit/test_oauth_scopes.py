"""Mastodon scopes: parsing, implication (`read` ⊇ `read:*` …), and the password-grant setting."""

from __future__ import annotations

import pytest

from t3r1_fed.config import ConfigError, Settings
from t3r1_fed.oauth import scopes as sc


def test_parse_keeps_order_drops_duplicates_and_refuses_unknown() -> None:
    assert sc.parse("read write read") == ("read", "write")
    assert sc.parse("read+write:statuses") == ("read", "write:statuses")
    assert sc.parse("") == ("read",)
    with pytest.raises(sc.ScopeError):
        sc.parse("read admin:everything")


def test_implication() -> None:
    assert sc.allows(("read",), "read:statuses")
    assert not sc.allows(("read",), "write:statuses")
    assert sc.allows(("write",), "write:media")
    assert sc.allows(("follow",), "write:follows")
    assert not sc.allows(("follow",), "write:statuses")
    assert sc.allows(("read:accounts",), "profile") and sc.allows(("read",), "profile")
    assert not sc.allows(("write:statuses",), "profile")
    assert sc.subset(("read:statuses", "write"), ("read", "write"))
    assert not sc.subset(("push",), ("read", "write"))


def test_password_grant_setting() -> None:
    assert Settings.from_mapping({}).oauth_password_grant is False
    env = {"T3R1_OAUTH_PASSWORD_GRANT": "1", "T3R1_DATA_DIR": "/nonexistent"}
    assert Settings.load(env).oauth_password_grant is True
    with pytest.raises(ConfigError):
        Settings.from_mapping({"oauth_password_grant": "maybe"})
