"""Signers for the safe HTTP client: every GET is signed by the instance actor."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from t3r1_fed.federation.httpsig import sign_headers
from t3r1_fed.federation.keys import load_private_key

Signer = Callable[[str, str, bytes | None], Mapping[str, str]]


def make_signer(key_id: str, private_key_pem: str) -> Signer:
    key = load_private_key(private_key_pem)

    def sign(method: str, url: str, body: bytes | None) -> Mapping[str, str]:
        return sign_headers(method, url, key_id=key_id, private_key=key, body=body)

    return sign
