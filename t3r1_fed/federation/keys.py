"""Key material for HTTP signatures: generation and cached PEM loading.

Actors sign with RSA-2048 keys (RSASSA-PKCS1-v1_5 SHA-256), the only scheme every
fediverse server understands. Remote actors may publish RSA keys, either as
SubjectPublicKeyInfo ("BEGIN PUBLIC KEY") or as PKCS#1 ("BEGIN RSA PUBLIC KEY"), or
Ed25519 keys. Parsing PEM costs far more than verifying one signature and happens for
every signed request, so both loaders keep a bounded cache keyed by the PEM text.
"""

from __future__ import annotations

import functools

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

__all__ = ["generate_rsa_keypair", "load_private_key", "load_public_key"]

# Size of the keys we generate for our own actors (Mastodon's choice too).
RSA_KEY_BITS = 2048
# Remote RSA keys outside this range are refused: smaller ones are breakable, larger
# ones make every verification needlessly slow (a cheap way to burn our CPU).
MIN_REMOTE_RSA_BITS = 1024
MAX_REMOTE_RSA_BITS = 8192
# Bound on the number of distinct PEM texts each cache keeps.
_CACHE_SIZE = 4096
# Larger PEM texts are refused before parsing (an RSA-8192 SPKI PEM is ~1.4 kB).
_MAX_PEM_CHARS = 16_384


def generate_rsa_keypair() -> tuple[str, str]:
    """Generate an RSA-2048 key pair.

    Returns ``(private PEM in PKCS#8, public PEM in SubjectPublicKeyInfo)``, unencrypted,
    as text ready to store in the database and to publish as ``publicKeyPem``.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    private_pem = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    ).decode("ascii")
    public_pem = (
        key.public_key()
        .public_bytes(
            encoding=serialization.Encoding.PEM,
            format=serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        .decode("ascii")
    )
    return private_pem, public_pem


@functools.lru_cache(maxsize=_CACHE_SIZE)
def load_private_key(pem: str) -> RSAPrivateKey:
    """Parse one of our unencrypted RSA private keys (PKCS#8 or PKCS#1 PEM).

    Raises ``ValueError`` if the text is not an unencrypted RSA private key.
    """
    try:
        key = serialization.load_pem_private_key(pem.strip().encode("ascii"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm, UnicodeError) as exc:
        # TypeError: the key is encrypted; UnicodeError: non-ASCII junk.
        raise ValueError("not a valid unencrypted PEM private key") from exc
    if not isinstance(key, RSAPrivateKey):
        raise ValueError("private key is not an RSA key")
    return key


@functools.lru_cache(maxsize=_CACHE_SIZE)
def load_public_key(pem: str) -> PublicKeyTypes:
    """Parse a remote actor's public key PEM (``publicKeyPem``).

    Accepts RSA keys as SubjectPublicKeyInfo ("BEGIN PUBLIC KEY") or PKCS#1
    ("BEGIN RSA PUBLIC KEY"), and Ed25519 keys as SubjectPublicKeyInfo. Anything else,
    including other key types and RSA keys of unreasonable size, raises ``ValueError``.
    The result is an ``RSAPublicKey`` or an ``Ed25519PublicKey``.
    """
    if len(pem) > _MAX_PEM_CHARS:
        raise ValueError("public key PEM too large")
    try:
        # load_pem_public_key understands both the SPKI and the PKCS#1 RSA PEM labels.
        key = serialization.load_pem_public_key(pem.strip().encode("ascii"))
    except (ValueError, TypeError, UnsupportedAlgorithm, UnicodeError) as exc:
        raise ValueError("not a valid PEM public key") from exc
    if isinstance(key, RSAPublicKey):
        if not MIN_REMOTE_RSA_BITS <= key.key_size <= MAX_REMOTE_RSA_BITS:
            raise ValueError("unsupported RSA key size")
        return key
    if isinstance(key, Ed25519PublicKey):
        return key
    raise ValueError("unsupported public key type")
