"""RFC 9421 HTTP Message Signatures, and the primitives httpsig shares with it.

Lower layer of :mod:`t3r1_fed.federation.httpsig` (import from there): the
:class:`SignatureError` both schemes raise, URL/Date/digest helpers, a parser and
serialiser for the RFC 8941 structured fields RFC 9421 uses, the signature base of
RFC 9421 §2.5 and the coverage rules we require of remote signatures. Outbound RFC 9421
signing is in httpsig. Pure code: no database, no network.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import urlsplit

from multidict import CIMultiDict

# Methods whose requests carry a body that must be covered by a digest.
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Refuse absurdly long signature fields before parsing them.
_MAX_FIELD_CHARS = 8192
_MAX_SIGNATURE_BYTES = 1024  # an RSA-8192 signature
_DIGESTS = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}


class SignatureError(Exception):
    """A request signature is missing, malformed or unacceptable.

    The message is sent back to the remote server in a JSON 401 body: keep it short and
    never put secrets or long remote input in it.
    """


# --- RFC 8941 structured field values (the subset RFC 9421 needs) ---


@dataclass(frozen=True, slots=True)
class Token:
    """An RFC 8941 token (an unquoted bare item), distinct from a string."""

    value: str


# Decimals, dates and display strings are not used by RFC 9421 and are refused.
BareItem = bool | int | str | bytes | Token
Params = dict[str, BareItem]


@dataclass(frozen=True, slots=True)
class Item:
    """A bare item with its parameters."""

    value: BareItem
    params: Params = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InnerList:
    """A parenthesised list of items with the list's own parameters."""

    items: tuple[Item, ...]
    params: Params = field(default_factory=dict)


# One bare item (RFC 8941 §3.3); the named group that matched tells its type. The
# integer branch refuses a following digit or dot, so decimals and over-long integers
# fail to parse instead of being silently truncated.
_BARE = re.compile(
    r"(?P<int>-?[0-9]{1,15})(?![0-9.])"
    r'|"(?P<str>(?:[ !#-\[\]-~]|\\["\\])*)"'
    r"|:(?P<bytes>[A-Za-z0-9+/]*=*):"
    r"|\?(?P<bool>[01])"
    r"|(?P<token>[A-Za-z*][A-Za-z0-9!#$%&'*+\-.^_`|~:/]*)"
)
_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")


class _Parser:
    """Parser following the algorithms of RFC 8941 §4.2 (dictionary and below)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def skip(self, chars: str) -> None:
        while self.peek() and self.peek() in chars:
            self.pos += 1

    def dictionary(self) -> dict[str, Item | InnerList]:
        out: dict[str, Item | InnerList] = {}
        self.skip(" ")
        while self.pos < len(self.text):
            key = self.key()
            member: Item | InnerList
            if self.peek() == "=":
                self.pos += 1
                member = self.inner_list() if self.peek() == "(" else self.item()
            else:
                member = Item(True, self.params())  # a bare key means Boolean true
            # RFC 8941 lets a later duplicate win; for signatures that ambiguity only
            # helps an attacker, so refuse it.
            if key in out:
                raise _malformed()
            out[key] = member
            self.skip(" \t")
            if self.pos == len(self.text):
                break
            if self.peek() != ",":
                raise _malformed()
            self.pos += 1
            self.skip(" \t")
            if self.pos == len(self.text):  # trailing comma
                raise _malformed()
        return out

    def item(self) -> Item:
        return Item(self.bare_item(), self.params())

    def inner_list(self) -> InnerList:
        self.pos += 1  # "("
        items: list[Item] = []
        while self.pos < len(self.text):
            self.skip(" ")
            if self.peek() == ")":
                self.pos += 1
                return InnerList(tuple(items), self.params())
            items.append(self.item())
            if self.peek() not in (" ", ")"):
                raise _malformed()
        raise _malformed()

    def params(self) -> Params:
        out: Params = {}
        while self.peek() == ";":
            self.pos += 1
            self.skip(" ")
            key = self.key()
            value: BareItem = True
            if self.peek() == "=":
                self.pos += 1
                value = self.bare_item()
            if key in out:
                raise _malformed()
            out[key] = value
        return out

    def key(self) -> str:
        match = _KEY.match(self.text, self.pos)
        if match is None:
            raise _malformed()
        self.pos = match.end()
        return match.group()

    def bare_item(self) -> BareItem:
        match = _BARE.match(self.text, self.pos)
        if match is None or match.lastgroup is None:
            raise _malformed()
        self.pos = match.end()
        kind, raw = match.lastgroup, match.group(match.lastgroup)
        if kind == "int":
            return int(raw)
        if kind == "str":
            return re.sub(r'\\(["\\])', r"\1", raw)
        if kind == "bool":
            return raw == "1"
        if kind == "token":
            return Token(raw)
        try:
            # Parsers should tolerate missing padding (RFC 8941 §4.2.7).
            return base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
        except binascii.Error as exc:
            raise _malformed() from exc


def _malformed() -> SignatureError:
    return SignatureError("malformed structured header")


def parse_dictionary(text: str) -> dict[str, Item | InnerList]:
    """Parse an RFC 8941 Dictionary (e.g. ``Signature-Input``); raise SignatureError."""
    if len(text) > _MAX_FIELD_CHARS:
        raise SignatureError("structured header too long")
    return _Parser(text).dictionary()


def _serialize_bare(value: BareItem) -> str:
    if isinstance(value, bool):  # before int: bool is a subclass of int
        return "?1" if value else "?0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Token):
        return value.value
    if isinstance(value, bytes):
        return ":" + base64.b64encode(value).decode("ascii") + ":"
    if any(not " " <= c <= "~" for c in value):
        raise ValueError("string not serialisable as a structured field")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _serialize_params(params: Params) -> str:
    return "".join(
        f";{key}" if value is True else f";{key}={_serialize_bare(value)}"
        for key, value in params.items()
    )


def serialize_inner_list(inner: InnerList) -> str:
    """Serialise an inner list with its parameters (RFC 8941 §4.1.1.1)."""
    body = " ".join(_serialize_bare(i.value) + _serialize_params(i.params) for i in inner.items)
    return f"({body}){_serialize_params(inner.params)}"


# --- Shared HTTP helpers (also used by the draft-cavage code in httpsig) ---


@functools.lru_cache(maxsize=4096)  # pure; a fan-out signs for the same inboxes again
def split_url(url: str) -> tuple[str, str, str]:
    """Split an http(s) URL into ``(scheme, authority, path_and_query)``.

    The authority is what the ``Host`` header carries: lowercase host (IDNA-encoded,
    IPv6 in brackets) and the port only when it is not the scheme's default.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host:
        raise ValueError("only absolute http(s) URLs can be signed")
    if not host.isascii():
        host = host.encode("idna").decode("ascii")
    if ":" in host:
        host = f"[{host}]"
    port = parts.port  # raises ValueError on a malformed port
    authority = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, authority, target


def http_date(when: datetime | None = None) -> str:
    """Format an RFC 7231 IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``); naive = UTC."""
    if when is None:
        return _http_date_at(int(time.time()))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return format_datetime(when.astimezone(UTC), usegmt=True)


@functools.lru_cache(maxsize=4)
def _http_date_at(second: int) -> str:
    """http_date() of now, once per second (the format has no sub-second part)."""
    return format_datetime(datetime.fromtimestamp(second, UTC), usegmt=True)


def header_values(headers: CIMultiDict[str], name: str) -> list[str]:
    """All values of a header, each trimmed of surrounding whitespace."""
    return [value.strip(" \t") for value in headers.getall(name, [])]


def content_digest(body: bytes) -> str:
    """RFC 9530 ``Content-Digest`` value: ``sha-256=:<base64>:``."""
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii") + ":"


def match_digests(header: str, entries: list[tuple[str, bytes | None]], body: bytes) -> None:
    """Check ``(algorithm, digest)`` entries of a digest header against the body.

    Every SHA-256/SHA-512 entry must match (``None`` marks an undecodable value) and
    there must be one; entries with other algorithms are ignored (RFC 9530 §2).
    """
    checked = False
    for algorithm, given in entries:
        hasher = _DIGESTS.get(algorithm.strip().lower())
        if hasher is None:
            continue
        if given is None:
            raise SignatureError(f"malformed {header} header")
        if not hmac.compare_digest(given, hasher(body).digest()):
            raise SignatureError(f"{header} does not match the body")
        checked = True
    if not checked:
        raise SignatureError(f"{header} needs SHA-256 or SHA-512")


def _check_content_digest(headers: CIMultiDict[str], body: bytes) -> None:
    values = header_values(headers, "content-digest")
    if not values:
        raise SignatureError("missing Content-Digest header")
    entries = [
        (name, m.value if isinstance(m, Item) and isinstance(m.value, bytes) else None)
        for name, m in parse_dictionary(", ".join(values)).items()
    ]
    match_digests("Content-Digest", entries, body)


# --- Signature base and inbound parsing ---


@dataclass(frozen=True, slots=True)
class Rfc9421Signature:
    """The parts of one RFC 9421 signature that verification needs."""

    label: str
    key_id: str
    alg: str  # "" when the signer did not declare one
    created: int
    expires: int | None
    components: tuple[str, ...]
    signature: bytes
    base: bytes


def _component_value(
    name: str, method: str, path_qs: str, headers: CIMultiDict[str], base_url: str | None
) -> str:
    """Value of one covered component for a request (RFC 9421 §2.1 and §2.2)."""
    path, _, query = path_qs.partition("?")
    # "@query" of a request without a query string is "?" alone (§2.2.7).
    derived = {"@method": method, "@path": path, "@query": "?" + query, "@request-target": path_qs}
    if name in ("@target-uri", "@authority", "@scheme"):
        if base_url is None:
            raise SignatureError(f"cannot verify {name}")
        scheme, authority, _ = split_url(base_url)
        target_uri = f"{scheme}://{authority}{path_qs}"
        derived.update({"@scheme": scheme, "@authority": authority, "@target-uri": target_uri})
    if name in derived:
        return derived[name]
    if name.startswith("@"):
        raise SignatureError(f"unsupported component {name[:64]}")
    values = header_values(headers, name)
    if not values:
        raise SignatureError(f"missing signed header {name[:64]}")
    return ", ".join(values)


def signature_base(
    inner: InnerList,
    method: str,
    path_qs: str,
    headers: CIMultiDict[str],
    *,
    base_url: str | None,
) -> bytes:
    """Build the RFC 9421 §2.5 signature base for the covered components in ``inner``.

    ``path_qs`` is the raw request target (path and query as received, not decoded);
    ``base_url`` is our own ``scheme://host[:port]``, needed for ``@target-uri``,
    ``@authority`` and ``@scheme``.
    """
    lines: list[str] = []
    seen: set[str] = set()
    for item in inner.items:
        name = item.value
        if not isinstance(name, str) or name != name.lower():
            raise SignatureError("malformed component identifier")
        if item.params:
            # ;sf ;key ;bs ;req ;name are not used by the fediverse: refuse them.
            raise SignatureError(f"unsupported parameters on component {name[:64]}")
        if name in seen or name == "@signature-params":
            raise SignatureError("malformed component list")
        seen.add(name)
        value = _component_value(name, method, path_qs, headers, base_url)
        lines.append(f"{_serialize_bare(name)}: {value}")
    lines.append(f'"@signature-params": {serialize_inner_list(inner)}')
    # Header values come from aiohttp as surrogate-escaped UTF-8: restore the raw bytes.
    return "\n".join(lines).encode("utf-8", "surrogateescape")


def parse_rfc9421(
    method: str,
    path_qs: str,
    headers: CIMultiDict[str],
    body: bytes | None,
    *,
    base_url: str | None,
) -> Rfc9421Signature:
    """Parse and check an RFC 9421 signed request, everything except the crypto.

    Requires ``created`` and ``keyid`` parameters, coverage of ``@method`` and of the
    target (``@target-uri``, or ``@authority`` with ``@path`` or ``@request-target``),
    and, for POST/PUT/PATCH or any non-empty body, a covered ``Content-Digest`` that
    matches the body. Clock checks on ``created``/``expires`` are left to the caller.
    """
    inputs = parse_dictionary(", ".join(header_values(headers, "signature-input")))
    signatures = parse_dictionary(", ".join(header_values(headers, "signature")))
    if not inputs:
        raise SignatureError("empty Signature-Input")
    label = "sig1" if "sig1" in inputs else next(iter(inputs))  # sig1, else the first
    inner = inputs[label]
    sig_member = signatures.get(label)
    if not isinstance(inner, InnerList):
        raise SignatureError("malformed Signature-Input")
    if not isinstance(sig_member, Item) or not isinstance(sig_member.value, bytes):
        raise SignatureError("missing or malformed Signature")
    if not 0 < len(sig_member.value) <= _MAX_SIGNATURE_BYTES:
        raise SignatureError("malformed Signature")

    params = inner.params
    created, expires = params.get("created"), params.get("expires")
    key_id, alg = params.get("keyid"), params.get("alg", "")
    if not isinstance(created, int) or isinstance(created, bool):
        raise SignatureError("signature lacks created")
    if not isinstance(key_id, str) or not key_id:
        raise SignatureError("signature lacks keyid")
    if expires is not None and (not isinstance(expires, int) or isinstance(expires, bool)):
        raise SignatureError("malformed expires")
    if not isinstance(alg, str) or alg not in ("", "rsa-v1_5-sha256", "ed25519"):
        raise SignatureError("unsupported signature algorithm")

    components = tuple(str(i.value) for i in inner.items)
    covered = set(components)
    if "@method" not in covered:
        raise SignatureError("@method must be signed")
    if "@target-uri" not in covered and not (
        "@authority" in covered and covered & {"@path", "@request-target"}
    ):
        raise SignatureError("@target-uri must be signed")
    if method.upper() in BODY_METHODS or body:
        if "content-digest" not in covered:
            raise SignatureError("content-digest must be signed")
    if "content-digest" in covered:
        _check_content_digest(headers, body or b"")

    base = signature_base(inner, method, path_qs, headers, base_url=base_url)
    return Rfc9421Signature(
        label, key_id, alg, created, expires, components, sig_member.value, base
    )
