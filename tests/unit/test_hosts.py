"""Host normalisation (INTEROP §7.11)."""

from __future__ import annotations

import pytest

from t3r1_fed.federation.hosts import host_of, normalize_host, same_origin


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Example.COM", "example.com"),
        ("example.com.", "example.com"),
        ("EXAMPLE.com.", "example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("BÜCHER.Example", "xn--bcher-kva.example"),
        ("bücher。example", "xn--bcher-kva.example"),  # ideographic full stop
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("example.com:8443", "example.com:8443"),
        ("example.com:0443", "example.com:443"),
        ("bücher.example.:8443", "xn--bcher-kva.example:8443"),
        ("127.0.0.1", "127.0.0.1"),
        ("127.0.0.1:8080", "127.0.0.1:8080"),
        ("[::1]", "[::1]"),
        ("[::1]:8080", "[::1]:8080"),
        ("::1", "[::1]"),
        ("[2001:DB8:0:0::1]", "[2001:db8::1]"),
        ("[::FFFF:127.0.0.1]:80", "[::ffff:7f00:1]:80"),
        ("r3---sn-abc.googlevideo.com", "r3---sn-abc.googlevideo.com"),
    ],
)
def test_normalize_host(raw: str, expected: str) -> None:
    assert normalize_host(raw) == expected
    assert normalize_host(expected) == expected  # idempotent


@pytest.mark.parametrize(
    "raw",
    [
        "",
        ".",
        "a..b",
        "example.com..",
        "-a.example",
        "exa mple.com",
        "under_score.example",
        "xn--zz.example",  # invalid Punycode
        "a" * 64 + ".example",
        ("a" * 60 + ".") * 5 + "example",  # longer than 253
        "example.com:",
        "example.com:0",
        "example.com:65536",
        "example.com:http",
        "[::1",
        "[::1]x",
        "[fe80::1%eth0]",
        "[not-v6]",
        "127.1",  # legacy IPv4 forms
        "2130706433",
        "0x7f.0.0.1",
        "127.000.0.1",
        "example.123",
    ],
)
def test_normalize_host_rejects(raw: str) -> None:
    with pytest.raises(ValueError):
        normalize_host(raw)


def test_normalize_host_drops_default_port_only_with_scheme() -> None:
    assert normalize_host("example.com:443") == "example.com:443"
    assert normalize_host("example.com:443", scheme="https") == "example.com"
    assert normalize_host("example.com:80", scheme="http") == "example.com"
    assert normalize_host("example.com:80", scheme="https") == "example.com:80"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://Example.COM/users/a", "example.com"),
        ("https://example.com:443/x", "example.com"),
        ("http://example.com:80/x", "example.com"),
        ("https://example.com:80/x", "example.com:80"),
        ("http://example.com:443/x", "example.com:443"),
        ("https://example.com:8443/x?y#z", "example.com:8443"),
        ("HTTPS://BÜCHER.example./x", "xn--bcher-kva.example"),
        ("http://127.0.0.1:8080/", "127.0.0.1:8080"),
        ("http://[::1]:8080/", "[::1]:8080"),
        ("http://[::1]/", "[::1]"),
    ],
)
def test_host_of(url: str, expected: str) -> None:
    assert host_of(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "",
        "example.com",
        "/users/a",
        "//example.com/x",
        "ftp://example.com/",
        "acct:a@example.com",
        "https://user@example.com/",
        "https://user:pw@example.com/",
        "https://@example.com/",
        "https:///x",
        "https://exa mple.com/",
        "https://127.1/",
        "https://example.com:99999/",
        "https://a.example\\@b.example/",
    ],
)
def test_host_of_rejects(url: str) -> None:
    with pytest.raises(ValueError):
        host_of(url)


def test_same_origin() -> None:
    assert same_origin("https://Example.com/a", "https://example.COM./b")
    assert same_origin("https://bücher.example/a", "xn--bcher-kva.example")
    assert same_origin("https://example.com:443/a", "http://example.com/b")
    assert same_origin("example.com:8443", "https://EXAMPLE.com:8443/x")
    assert not same_origin("https://example.com/a", "https://example.com:8443/a")
    assert not same_origin("https://example.com/a", "https://evil.example/a")
    assert not same_origin("https://example.com.evil.example/", "example.com")
    # invalid input never matches, not even itself
    assert not same_origin("https://user@example.com/", "https://user@example.com/")
    assert not same_origin("", "")
