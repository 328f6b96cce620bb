"""The inbox's fast paths give exactly the answers of the full parsers they skip.

host_of and http_url answer plain URLs (`https://host[:port]/path#frag` with unreserved
characters) without yarl or urlsplit; these tests compare both paths on generated URLs,
plain and not, valid and not (same value, or both raise / both None).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from t3r1_fed.federation import hosts
from t3r1_fed.vocab import shapes

PIECES = [
    "http", "https", "HTTPS", "ftp", "://", ":/", "//", "/", "a", "b.example", "EXAMPLE.org",
    "xn--bcher-kva.example", "bücher.example", ".", "..", "-", "-a", "a-", "127.0.0.1",
    "127.1", "0x7f.0.0.1", "[::1]", "[", "]", ":", ":0", ":80", ":443", ":8080", ":65535",
    ":65536", ":99999", ":", "@", "user@", "#", "?", "?q=1", "%41", "%zz", "~", "_", " ",
    "\t", "\\", "users", "statuses", "123", "1", "#main-key", "#likes/1", "é", "\x00", "",
]


PLAIN = ["a", "b.example", "EXAMPLE.org", "127.0.0.5", "0x7f", "-", ".", ":8080", ":0",
         ":65536", "/", "users", "~x", "_y", "#", "#main-key", "123"]


def _random_url(rng: random.Random) -> str:
    if rng.random() < 0.5:  # mostly plain-looking URLs, so the fast path is exercised
        return rng.choice(["http://", "https://"]) + "".join(
            rng.choice(PLAIN) for _ in range(rng.randint(0, 6)))
    head = rng.choice(["http://", "https://", "HTTP://", "https:/", ""])
    return head + "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 8)))


def _outcome(fn: Callable[[str], object], value: str) -> tuple[str, object]:
    try:
        return ("ok", fn(value))
    except Exception as e:
        return ("error", type(e))


def test_host_of_fast_path_matches_the_full_parse() -> None:
    rng = random.Random(20261128)
    plain = 0
    for _ in range(12_000):
        url = _random_url(rng)
        if hosts._PLAIN_URL.match(url):
            plain += 1
        assert _outcome(hosts.host_of, url) == _outcome(hosts._host_of, url), url
    assert plain > 1_500  # the fast path was exercised
    # Errors raised by the authority are raised on the fast path too, every time.
    for bad in ("https://a..b/x", "https://-a.example/x", "http://127.1/x",
                "https://a:65536/x", "https://0x7f.0.0.1/x"):
        for _ in range(2):
            assert _outcome(hosts.host_of, bad)[0] == "error", bad
    assert hosts.host_of("https://EXAMPLE.org:443/u/x#main-key") == "example.org"
    assert hosts.host_of("http://127.0.0.5:8080/u/x") == "127.0.0.5:8080"


def test_http_url_fast_path_matches_urlsplit() -> None:
    rng = random.Random(11282026)
    plain = 0
    for _ in range(12_000):
        url = _random_url(rng)
        iri = shapes.id_of(url)
        if iri is not None and shapes._PLAIN_HTTP_URL.fullmatch(iri):
            plain += 1
        assert shapes.http_url(url) == shapes._split_http_url(iri), url
    assert plain > 1_500
    assert shapes.http_url("https://a.example:99999/x") is None
    assert shapes.http_url("https://a.example:65535/x") == "https://a.example:65535/x"
