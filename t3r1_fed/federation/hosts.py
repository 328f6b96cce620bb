"""Host normalisation for every comparison and block check (INTEROP §7.11).

Pure functions, no I/O. A normalised host is:

* lowercase ASCII, internationalised labels IDNA-encoded (UTS #46, non-transitional,
  the same encoding yarl, and hence aiohttp, applies to URLs),
* without the trailing dot of a fully qualified name,
* an IPv4 literal in canonical dotted-quad form (legacy forms such as ``127.1`` or
  ``0x7f.0.0.1`` are rejected, they are a classic SSRF evasion),
* an IPv6 literal compressed and kept in brackets (``[::1]``),
* followed by ``:port`` when a port is present, except the scheme's default port
  (dropped by ``host_of``, and by ``normalize_host`` when given the scheme).

``is_blocked_address`` classifies IP addresses for the SSRF guard of the HTTP client.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Sequence

import idna
from yarl import URL

__all__ = [
    "DEFAULT_PORTS",
    "IPAddress",
    "IPNetwork",
    "host_of",
    "is_blocked_address",
    "normalize_host",
    "same_origin",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Default port of each scheme this server speaks; ``host_of`` drops these.
DEFAULT_PORTS: dict[str, int] = {"http": 80, "https": 443}

_MAX_NAME_LENGTH = 253
# A DNS label in LDH form (letters, digits, hyphen; no leading or trailing hyphen).
_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
# A label that WHATWG's URL parser would read as (part of) an IPv4 number.
_NUMERIC_LABEL_RE = re.compile(r"(?:[0-9]+|0x[0-9a-f]*)\Z")
_PORT_RE = re.compile(r"[0-9]{1,5}\Z")


def normalize_host(host: str, *, scheme: str | None = None) -> str:
    """Return the normalised form of ``host`` (``name``, ``name:port``, ``[v6]:port``).

    A port is kept unless ``scheme`` is given and the port is that scheme's
    default. Raise ``ValueError`` on an empty or invalid host.
    """
    if not host:
        raise ValueError("empty host")
    name, port = _split_port(host)
    if scheme is not None and port is not None and DEFAULT_PORTS.get(scheme) == port:
        port = None
    return _join(_normalize_name(name), port)


# A plain URL: lowercase http(s), an authority of letters, digits, dots, hyphens and an
# optional port, then only unreserved characters and slashes (and a fragment of the same).
# For these the authority alone decides host_of's answer (or its error), so it is computed
# once per scheme and authority; every other URL goes through the full parse.
_PLAIN_URL = re.compile(r"(https?)://([A-Za-z0-9.-]+(?::[0-9]{1,5})?)(?:/[A-Za-z0-9._~/-]*)?"
                        r"(?:#[A-Za-z0-9._~/-]*)?\Z")


def host_of(url: str) -> str:
    """Return the normalised authority (``host[:port]``) of an absolute http(s) URL.

    The scheme's default port is dropped, any other port is kept. Raise
    ``ValueError`` for anything else: relative URLs, other schemes, userinfo.
    """
    plain = _PLAIN_URL.match(url) if isinstance(url, str) else None
    if plain is not None:
        return _plain_host_of(plain.group(1), plain.group(2))
    return _host_of(url)


@functools.lru_cache(maxsize=4096)
def _plain_host_of(scheme: str, authority: str) -> str:
    """host_of of `scheme://authority/` (errors are raised again, never cached)."""
    return _host_of(f"{scheme}://{authority}/")


def _host_of(url: str) -> str:
    try:
        parsed = URL(url)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"invalid URL: {url!r}") from exc
    scheme = parsed.scheme
    if scheme not in DEFAULT_PORTS or not parsed.absolute:
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    # yarl silently drops an empty userinfo ("http://@host/"): look at the raw text too.
    if parsed.raw_user is not None or parsed.raw_password is not None or "@" in _raw_authority(url):
        raise ValueError(f"userinfo is not allowed in URLs: {url!r}")
    raw_host = parsed.raw_host
    if not raw_host:
        raise ValueError(f"URL has no host: {url!r}")
    if ":" in raw_host:  # yarl strips the brackets of IPv6 literals
        raw_host = f"[{raw_host}]"
    port = parsed.explicit_port
    if port is not None and port == DEFAULT_PORTS[scheme]:
        port = None
    return _join(_normalize_name(raw_host), port)


def same_origin(a: str, b: str) -> bool:
    """Tell whether two hosts or absolute http(s) URLs have the same normalised host.

    Each argument may be a bare host (``example.com:8443``) or a URL. Invalid
    input never matches anything (fail closed).
    """
    try:
        return _authority(a) == _authority(b)
    except ValueError:
        return False


def _authority(value: str) -> str:
    return host_of(value) if "://" in value else normalize_host(value)


_AUTHORITY_END = re.compile(r"[/?#]")


def _raw_authority(url: str) -> str:
    """Return the text between ``scheme://`` and the first ``/``, ``?`` or ``#``."""
    _, sep, rest = url.partition("://")
    if not sep:
        return ""
    return _AUTHORITY_END.split(rest, maxsplit=1)[0]


def _split_port(host: str) -> tuple[str, int | None]:
    """Split ``host`` into its name part and its port (``None`` when absent)."""
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            raise ValueError(f"unterminated IPv6 literal: {host!r}")
        name, rest = host[: end + 1], host[end + 1 :]
        if not rest:
            return name, None
        if not rest.startswith(":"):
            raise ValueError(f"invalid host: {host!r}")
        return name, _parse_port(rest[1:])
    if host.count(":") > 1:  # a bare IPv6 literal, no port possible
        return host, None
    name, sep, port = host.partition(":")
    return name, (_parse_port(port) if sep else None)


def _parse_port(text: str) -> int:
    if not _PORT_RE.match(text):
        raise ValueError(f"invalid port: {text!r}")
    port = int(text)
    if not 0 < port <= 65535:
        raise ValueError(f"port out of range: {port}")
    return port


def _join(name: str, port: int | None) -> str:
    return name if port is None else f"{name}:{port}"


@functools.lru_cache(maxsize=4096)
def _normalize_name(name: str) -> str:
    """Normalise a host name or IP literal (without port).

    Memoised: the inbox calls host_of several times per activity on a handful of hosts, and
    IDNA/IP validation costs ~10 µs a call (errors are raised again, never cached).
    """
    if name.startswith("[") or ":" in name:
        inner = name[1:-1] if name.startswith("[") and name.endswith("]") else name
        return f"[{_normalize_ipv6(inner)}]"
    if name.isascii():
        mapped = name.lower()
    else:
        try:
            mapped = idna.uts46_remap(name, std3_rules=False, transitional=False)
        except idna.IDNAError as exc:
            raise ValueError(f"invalid internationalised host: {name!r}") from exc
    if mapped.endswith("."):
        mapped = mapped[:-1]
    if not mapped:
        raise ValueError("empty host")
    labels = [_normalize_label(label) for label in mapped.split(".")]
    if _NUMERIC_LABEL_RE.match(labels[-1]):
        return _canonical_ipv4(mapped)
    result = ".".join(labels)
    if len(result) > _MAX_NAME_LENGTH:
        raise ValueError(f"host name too long: {result!r}")
    return result


def _normalize_label(label: str) -> str:
    """Return the ASCII (A-label) form of one label, validating it."""
    if not label:
        raise ValueError("empty label in host name")
    try:
        if not label.isascii():
            label = idna.alabel(label).decode("ascii")
        elif label.startswith("xn--"):
            idna.ulabel(label)  # validates the Punycode and the decoded U-label
    except idna.IDNAError as exc:
        raise ValueError(f"invalid host label: {label!r}") from exc
    # Plain ASCII labels are checked against LDH rules only: IDNA 2008's ban on
    # "--" in positions 3-4 would reject real names such as "r3---sn-abc".
    if not _LABEL_RE.match(label):
        raise ValueError(f"invalid host label: {label!r}")
    return label


def _canonical_ipv4(text: str) -> str:
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError as exc:
        raise ValueError(f"not a canonical IPv4 address: {text!r}") from exc
    if str(address) != text:
        raise ValueError(f"not a canonical IPv4 address: {text!r}")
    return text


def _normalize_ipv6(text: str) -> str:
    if "%" in text:
        raise ValueError(f"IPv6 zone identifiers are not allowed: {text!r}")
    try:
        return ipaddress.IPv6Address(text).compressed
    except ValueError as exc:
        raise ValueError(f"invalid IPv6 literal: {text!r}") from exc


# --- address policy for the SSRF guard (INTEROP §7.9) -------------------------------

_EXTRA_BLOCKED: tuple[IPNetwork, ...] = (
    ipaddress.IPv4Network("0.0.0.0/8"),  # "this network"
    ipaddress.IPv4Network("100.64.0.0/10"),  # CGNAT, not "private" for Python
    ipaddress.IPv6Network("fec0::/10"),  # deprecated site-local
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _is_special(ip: IPAddress) -> bool:
    """Tell whether ``ip`` is anything but a plain global unicast address."""
    return (
        not ip.is_global
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or any(ip in net for net in _EXTRA_BLOCKED)
    )


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """Return the IPv4 address tunnelled in a 6to4, Teredo or NAT64 address."""
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_blocked_address(address: str | IPAddress, allow_private: Sequence[IPNetwork] = ()) -> bool:
    """Tell whether the SSRF guard refuses ``address``.

    Refused: loopback, private (RFC 1918, fc00::/7), link-local, CGNAT, unspecified,
    multicast, reserved and other special-purpose ranges, and IPv4-mapped, 6to4,
    Teredo and NAT64 forms of those, unless inside one of ``allow_private``.
    Unparsable input is refused.
    """
    try:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in net for net in allow_private):
        return False
    if _is_special(ip):
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None and _is_special(inner):
            return not any(inner in net for net in allow_private)
    return False
