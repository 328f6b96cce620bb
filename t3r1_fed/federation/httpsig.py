"""HTTP signatures: draft-cavage (as Mastodon signs) and RFC 9421, out and in.

Inbound verification has two steps, so cheap checks run before any key lookup and the key
fetch stays with the caller: :func:`parse_request_signature` checks all that needs no key
(syntax, signed components, body digest, clock window) or raises :class:`SignatureError`;
the caller finds the key for :attr:`ParsedSignature.key_id` (see
:func:`key_id_actor_guess`) and calls :meth:`ParsedSignature.verify`.
Pure code: no database, no network. RFC 9421 mechanics live in ``httpsig_rfc9421``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal, cast
from urllib.parse import urldefrag

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from multidict import CIMultiDict, CIMultiDictProxy

from t3r1_fed.federation.httpsig_rfc9421 import (
    BODY_METHODS,
    InnerList,
    Item,
    SignatureError,
    content_digest,
    header_values,
    http_date,
    match_digests,
    parse_rfc9421,
    serialize_inner_list,
    signature_base,
    split_url,
)

__all__ = [
    "ACTIVITY_JSON",
    "DEFAULT_ACCEPT",
    "MAX_AGE",
    "MAX_FUTURE",
    "ParsedSignature",
    "SignatureError",
    "body_digest",
    "cavage_signing_string",
    "key_id_actor_guess",
    "parse_request_signature",
    "sign_headers",
    "sign_headers_rfc9421",
]

ACTIVITY_JSON = "application/activity+json"
DEFAULT_ACCEPT = (
    "application/activity+json, "
    'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
)
# Mastodon's clock window (signature_verification.rb): a signature expires 5 minutes
# after it was made, with 1 hour of clock-skew margin on both sides.
MAX_AGE = timedelta(hours=1, minutes=5)
MAX_FUTURE = timedelta(hours=1)

# Algorithms accepted per key type. "" means the signer declared none and "hs2019"
# means "derive from the key" (draft-cavage-12): both pick the scheme by key type.
_RSA_ALGORITHMS = frozenset({"", "hs2019", "rsa-sha256", "rsa-v1_5-sha256"})
_ED25519_ALGORITHMS = frozenset({"", "hs2019", "ed25519"})
_CAVAGE_ALGORITHMS = frozenset({"", "hs2019", "rsa-sha256"})

_MAX_HEADER_CHARS = 8192
_MAX_SIGNED_HEADERS = 64
_MAX_SIGNATURE_BYTES = 1024  # an RSA-8192 signature
# One draft-cavage parameter: name="quoted value" or name=token, then a comma or the end.
# The quoted value is written as an unrolled loop, [^"\\]*(?:\\.[^"\\]*)*, which matches
# exactly what (?:[^"\\]|\\.)* matches but runs ~10x faster on a 344-character signature
# (the alternation is tried once per character).
_CAVAGE_PARAM = re.compile(
    r"[ \t]*([A-Za-z][A-Za-z0-9_-]*)[ \t]*=[ \t]*"
    r'(?:"([^"\\]*(?:\\.[^"\\]*)*)"|([0-9A-Za-z!#$%&\'*+.^_`|~-]+))[ \t]*(?:,|$)'
)
_QUOTED_PAIR = re.compile(r"\\(.)")
_TIMESTAMP = re.compile(r"\d{1,12}(?:\.\d{1,9})?")
_UNSAFE_KEY_ID = re.compile(r'["\\\x00-\x1f\x7f]')


@dataclass(frozen=True, slots=True)
class ParsedSignature:
    """A request signature that passed every check not needing the key.

    ``algorithm`` is the declared algorithm (lowercase), ``""`` if none was declared.
    ``signed_components`` are the cavage header names or RFC 9421 component
    identifiers, in signed order.
    """

    scheme: Literal["cavage", "rfc9421"]
    key_id: str
    algorithm: str
    signed_components: tuple[str, ...]
    created: datetime | None = None
    expires: datetime | None = None
    # The raw signature and the candidate signing strings / signature bases it may
    # cover (cavage: with the query string first, then without it).
    signature: bytes = field(default=b"", repr=False)
    bases: tuple[bytes, ...] = field(default=(), repr=False)

    def verify(self, public_key: PublicKeyTypes) -> bool:
        """Check the signature with ``public_key``; False on any mismatch.

        RSA keys verify RSASSA-PKCS1-v1_5 with SHA-256, Ed25519 keys verify Ed25519.
        Raises SignatureError only for a key type we do not support.
        """
        if isinstance(public_key, RSAPublicKey):
            allowed = _RSA_ALGORITHMS
        elif isinstance(public_key, Ed25519PublicKey):
            allowed = _ED25519_ALGORITHMS
        else:
            raise SignatureError("unsupported key type")
        if self.algorithm not in allowed:
            return False
        return any(_verify_one(public_key, self.signature, base) for base in self.bases)


def _verify_one(key: RSAPublicKey | Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        if isinstance(key, RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            key.verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


def body_digest(body: bytes) -> str:
    """draft-cavage ``Digest`` header value: ``SHA-256=<base64>``."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def key_id_actor_guess(key_id: str) -> str:
    """Actor URL guessed from a keyId: ``https://a/u/x#main-key`` → ``https://a/u/x``.

    GoToSocial keyIds have no fragment (``https://gts/users/x/main-key``) and come back
    unchanged: the caller fetches that document and follows its ``owner``.
    """
    return urldefrag(key_id).url


# --- Outbound (draft-cavage, as Mastodon signs) ---


def _signing_string(
    method: str,
    target: str,
    headers: CIMultiDict[str],
    signed: Sequence[str],
    created: str | None = None,
    expires: str | None = None,
) -> str:
    lines: list[str] = []
    for name in signed:
        if name == "(request-target)":
            lines.append(f"(request-target): {method.lower()} {target}")
        elif name in ("(created)", "(expires)"):
            value = created if name == "(created)" else expires
            if value is None:
                raise SignatureError(f"{name} signed without its parameter")
            lines.append(f"{name}: {value}")
        elif name.startswith("("):
            raise SignatureError("unsupported pseudo-header")
        else:
            values = header_values(headers, name)
            if not values:
                raise SignatureError(f"missing signed header {name[:64]}")
            lines.append(f"{name}: {', '.join(values)}")
    return "\n".join(lines)


def cavage_signing_string(
    method: str,
    target: str,
    headers: Mapping[str, str],
    signed: Sequence[str],
    *,
    created: str | None = None,
    expires: str | None = None,
) -> str:
    """The draft-cavage signing string for lowercase header names ``signed``, in order.

    ``target`` is the request path with its query string. Repeated header values are
    joined with ", ". Raises SignatureError if a listed header is missing.
    """
    return _signing_string(method, target, CIMultiDict(headers.items()), signed, created, expires)


def sign_headers(
    method: str,
    url: str,
    *,
    key_id: str,
    private_key: RSAPrivateKey,
    body: bytes | None = None,
    content_type: str = ACTIVITY_JSON,
    accept: str = DEFAULT_ACCEPT,
    date: datetime | None = None,
    digest: str | None = None,
) -> dict[str, str]:
    """Headers for a draft-cavage ``rsa-sha256`` signed request, Signature included.

    POST (and PUT/PATCH, or whenever ``body``/``digest`` is given) signs
    ``(request-target) host date digest content-type``; GET/HEAD sign
    ``(request-target) host date accept``; other methods ``(request-target) host date``.
    Pass ``digest`` (from :func:`body_digest`) to reuse one computed for a fan-out.
    """
    if _UNSAFE_KEY_ID.search(key_id):
        raise ValueError("keyId contains characters that cannot be quoted")
    _, authority, target = split_url(url)
    upper = method.upper()
    out: dict[str, str] = {"Host": authority, "Date": http_date(date)}
    signed: tuple[str, ...] = ("(request-target)", "host", "date")
    if body is not None or digest is not None or upper in BODY_METHODS:
        out["Digest"] = digest if digest is not None else body_digest(body or b"")
        out["Content-Type"] = content_type
        signed += ("digest", "content-type")
    elif upper in ("GET", "HEAD"):
        out["Accept"] = accept
        signed += ("accept",)
    text = _signing_string(upper, target, CIMultiDict(out), signed)
    signature = private_key.sign(text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    out["Signature"] = (
        f'keyId="{key_id}",algorithm="rsa-sha256",headers="{" ".join(signed)}",'
        f'signature="{base64.b64encode(signature).decode("ascii")}"'
    )
    return out


def sign_headers_rfc9421(
    method: str,
    url: str,
    *,
    key_id: str,
    private_key: RSAPrivateKey,
    body: bytes | None = None,
    content_type: str = ACTIVITY_JSON,
    accept: str = DEFAULT_ACCEPT,
    created: datetime | None = None,
) -> dict[str, str]:
    """Headers for an RFC 9421 signed request (label ``sig1``, RSASSA-PKCS1-v1_5 SHA-256).

    Covers ``@method @target-uri content-digest content-type`` when there is a body (as in
    sign_headers), else ``@method @target-uri``; adds unsigned ``Host`` and ``Date``.
    """
    scheme, authority, target = split_url(url)
    upper = method.upper()
    when = datetime.now(UTC) if created is None else created
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when
    out: dict[str, str] = {"Host": authority, "Date": http_date(when)}
    names = ["@method", "@target-uri"]
    if body is not None or upper in BODY_METHODS:  # same rule as sign_headers
        out["Content-Type"] = content_type
        out["Content-Digest"] = content_digest(body or b"")
        names += ["content-digest", "content-type"]
    else:
        out["Accept"] = accept
    items = tuple(Item(name) for name in names)
    inner = InnerList(items, {"created": int(when.timestamp()), "keyid": key_id})
    base = signature_base(
        inner, upper, target, CIMultiDict(out), base_url=f"{scheme}://{authority}"
    )
    signature = private_key.sign(base, padding.PKCS1v15(), hashes.SHA256())
    out["Signature-Input"] = "sig1=" + serialize_inner_list(inner)
    out["Signature"] = "sig1=:" + base64.b64encode(signature).decode("ascii") + ":"
    return out


# --- Inbound ---


def parse_request_signature(
    method: str,
    path_qs: str,
    headers: Mapping[str, str],
    body: bytes | None,
    *,
    now: datetime | None = None,
    base_url: str | None = None,
) -> ParsedSignature:
    """Parse and pre-check a request's signature (either scheme), without the key.

    ``path_qs`` is the raw request target, path plus query as received (aiohttp:
    ``request.raw_path``). ``headers`` may be any mapping; a multidict keeps repeated
    headers. ``base_url`` is our own ``scheme://host[:port]``, needed to rebuild the
    RFC 9421 ``@target-uri``. Raises SignatureError when the request must be refused.
    """
    # aiohttp's request headers are already a case-insensitive multidict, and nothing here
    # writes to it: used as is (a copy cost more than the checks that read it).
    ci: CIMultiDict[str] = (
        cast(CIMultiDict[str], headers)
        if isinstance(headers, CIMultiDict | CIMultiDictProxy)
        else CIMultiDict(headers.items())
    )
    now = datetime.now(UTC) if now is None else now
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now
    if "signature-input" not in ci:
        return _parse_cavage(method, path_qs, ci, body, now)
    sig = parse_rfc9421(method, path_qs, ci, body, base_url=base_url)
    created = _check_window(float(sig.created), now)
    if "date" in sig.components:
        _check_window(_parse_http_date(header_values(ci, "date")[0]), now)
    expires = None if sig.expires is None else _check_expires(float(sig.expires), now)
    return ParsedSignature(
        "rfc9421", sig.key_id, sig.alg, sig.components, created, expires, sig.signature,
        (sig.base,),
    )  # fmt: skip


def _single(headers: CIMultiDict[str], name: str) -> str | None:
    values = headers.getall(name, [])
    if len(values) > 1:
        raise SignatureError(f"more than one {name} header")
    if values and len(values[0]) > _MAX_HEADER_CHARS:
        raise SignatureError(f"{name} header too long")
    return values[0].strip() if values else None


def _parse_cavage_params(raw: str) -> dict[str, str]:
    """Parse ``keyId="…",algorithm="…",…`` into a dict keyed by lowercase name."""
    params: dict[str, str] = {}
    pos = 0
    while pos < len(raw):
        match = _CAVAGE_PARAM.match(raw, pos)
        name = match.group(1).lower() if match else ""
        if match is None or match.end() == pos or name in params:
            raise SignatureError("malformed Signature header")
        quoted, token = match.group(2), match.group(3)
        if quoted is None:
            params[name] = token
        else:
            params[name] = _QUOTED_PAIR.sub(r"\1", quoted) if "\\" in quoted else quoted
        pos = match.end()
    return params


def _parse_cavage(
    method: str, path_qs: str, headers: CIMultiDict[str], body: bytes | None, now: datetime
) -> ParsedSignature:
    raw = _single(headers, "signature")
    if raw is None:
        auth = _single(headers, "authorization")
        if auth is None or auth[:10].lower() != "signature ":
            raise SignatureError("request not signed")
        raw = auth[10:]
    elif raw[:10].lower() == "signature ":
        raw = raw[10:]  # prefix sent by old node-http-signature versions (Mastodon allows)
    params = _parse_cavage_params(raw)

    key_id = params.get("keyid", "")
    algorithm = params.get("algorithm", "").lower()
    created, expires = params.get("created"), params.get("expires")
    if not key_id or not params.get("signature"):
        raise SignatureError("keyId and signature are required")
    if algorithm not in _CAVAGE_ALGORITHMS:
        raise SignatureError("unsupported signature algorithm")
    if any(v is not None and not _TIMESTAMP.fullmatch(v) for v in (created, expires)):
        raise SignatureError("malformed created or expires")
    signature = _b64(params["signature"])
    if signature is None or not 0 < len(signature) <= _MAX_SIGNATURE_BYTES:
        raise SignatureError("malformed signature value")

    signed = params.get("headers", "").lower().split()
    if not signed:
        # Default list: "(created)" for hs2019 when created is given (draft-cavage-12),
        # "date" otherwise (earlier drafts, and what rsa-sha256 signers mean).
        signed = ["(created)"] if algorithm != "rsa-sha256" and created else ["date"]
    _check_cavage_strength(method, signed, algorithm, body)
    if "digest" in signed:
        _check_digest(headers, body or b"")
    bases = [_signing_string(method, path_qs, headers, signed, created, expires)]
    if "(request-target)" in signed and "?" in path_qs:
        # Some servers sign the path without its query string: accept that too.
        path = path_qs.split("?", 1)[0]
        bases.append(_signing_string(method, path, headers, signed, created, expires))

    created_at = _check_window(float(created), now) if created else None
    date = _single(headers, "date")
    if date is not None and ("date" in signed or created is None):
        _check_window(_parse_http_date(date), now)
    expires_at = _check_expires(float(expires), now) if expires else None
    return ParsedSignature(
        "cavage", key_id, algorithm, tuple(signed), created_at, expires_at, signature,
        tuple(b.encode("utf-8", "surrogateescape") for b in bases),
    )  # fmt: skip


def _check_cavage_strength(
    method: str, signed: Sequence[str], algorithm: str, body: bytes | None
) -> None:
    """Mastodon's minimum signed set (signature_verification.rb), plus a size cap."""
    names = set(signed)
    upper = method.upper()
    if len(signed) > _MAX_SIGNED_HEADERS:
        raise SignatureError("too many signed headers")
    if not names & {"date", "(created)"}:
        raise SignatureError("date or (created) must be signed")
    if not names & {"(request-target)", "digest"}:
        raise SignatureError("(request-target) or digest must be signed")
    if upper == "GET" and "host" not in names:
        raise SignatureError("host must be signed on GET")
    if (upper in BODY_METHODS or body) and "digest" not in names:
        raise SignatureError("digest must be signed")
    if algorithm == "rsa-sha256" and names & {"(created)", "(expires)"}:
        raise SignatureError("(created) and (expires) need hs2019")


def _b64(value: str) -> bytes | None:
    """Strict base64 decoding (whitespace ignored); None if invalid."""
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def _check_digest(headers: CIMultiDict[str], body: bytes) -> None:
    """Recompute the body digest against ``Digest`` (``SHA-256=…``, ``SHA-512=…``)."""
    values = header_values(headers, "digest")
    if not values:
        raise SignatureError("missing Digest header")
    entries = [entry.strip().partition("=") for entry in ", ".join(values).split(",")]
    match_digests("Digest", [(name, _b64(value)) for name, _, value in entries], body)


# Pure, and every request signed in the same second carries the same Date: memoised
# (a malformed value raises again each time, errors are not cached).
@functools.lru_cache(maxsize=1024)
def _parse_http_date(value: str) -> float:
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError) as exc:
        raise SignatureError("malformed Date header") from exc
    return (when.replace(tzinfo=UTC) if when.tzinfo is None else when).timestamp()


def _check_window(sent: float, now: datetime) -> datetime:
    """Refuse a timestamp outside [now − MAX_AGE, now + MAX_FUTURE]; return it."""
    current = now.timestamp()
    if sent < current - MAX_AGE.total_seconds():
        raise SignatureError("signature date too old")
    if sent > current + MAX_FUTURE.total_seconds():
        raise SignatureError("signature date in the future")
    return datetime.fromtimestamp(sent, UTC)


def _check_expires(expires: float, now: datetime) -> datetime:
    if expires < now.timestamp():
        raise SignatureError("signature expired")
    # Far-future values cannot be represented; they are as good as "not expired".
    return datetime.fromtimestamp(min(expires, 253_402_300_799.0), UTC)
