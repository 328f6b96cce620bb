"""WebFinger client: `name@host` → actor id, with Mastodon's round-trip check."""

from __future__ import annotations

from urllib.parse import quote

from t3r1_fed.federation.hosts import host_of, normalize_host
from t3r1_fed.federation.http_client import FetchError, SafeHttpClient
from t3r1_fed.vocab.normalize import as_list


class WebFingerError(Exception):
    pass


def split_acct(acct: str) -> tuple[str, str]:
    acct = acct.strip()
    if acct.startswith("acct:"):
        acct = acct[5:]
    acct = acct.lstrip("@")
    user, sep, host = acct.rpartition("@")
    if not sep or not user or not host:
        raise WebFingerError(f"not an account address: {acct!r}")
    try:
        return user, normalize_host(host)
    except ValueError as e:
        raise WebFingerError(f"invalid host in {acct!r}") from e


async def resolve_acct(http: SafeHttpClient, acct: str, *, scheme: str = "https") -> str:
    """The ActivityPub id of `user@host`, whose host must be the actor's host."""
    user, host = split_acct(acct)
    url = f"{scheme}://{host}/.well-known/webfinger?resource={quote(f'acct:{user}@{host}')}"
    try:
        jrd = await http.get_jrd(url)
    except FetchError as e:
        raise WebFingerError(f"webfinger {user}@{host}: {e}") from e
    for link in as_list(jrd.get("links")):
        if not isinstance(link, dict) or link.get("rel") != "self":
            continue
        if link.get("type") not in (
            "application/activity+json",
            'application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
        ):
            continue
        href = link.get("href")
        if isinstance(href, str):
            try:
                # The answer may point elsewhere only on the same host (no account takeover).
                same = host_of(href) == host
            except ValueError:
                same = False
            if same:
                return href
            raise WebFingerError("webfinger points to another host")
    raise WebFingerError(f"no ActivityPub actor for {user}@{host}")
