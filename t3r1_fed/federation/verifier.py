"""Who signed this request? Shared by the inbox (POST) and signed fetches (GET).

The key is looked up in the in-memory cache, then the database, then fetched once; a
signature that fails with a cached key triggers at most one refetch per actor per
`KEY_REFETCH_WINDOW` (key rotation without becoming a fetch amplifier).
"""

from __future__ import annotations

import logging

from aiohttp import web

from t3r1_fed.context import Context
from t3r1_fed.federation.httpsig import ParsedSignature, SignatureError, parse_request_signature
from t3r1_fed.federation.keys import load_public_key
from t3r1_fed.federation.resolver import ResolveError, actor_for_key

log = logging.getLogger("t3r1.signatures")


def check_key(sig: ParsedSignature, pem: str) -> bool:
    try:
        return sig.verify(load_public_key(pem))
    except (ValueError, SignatureError):  # junk or unsupported key: not a valid signature
        return False


async def signer_of(ctx: Context, sig: ParsedSignature) -> str | None:
    """The URI of the actor whose key made `sig`, or None."""
    cached = ctx.key_cache.get(sig.key_id)
    if cached is not None and check_key(sig, cached[1]):
        return cached[0]
    for refresh in (False, True):
        if refresh is False and cached is not None:
            continue  # the cached key just failed: go straight to a refetch
        async with ctx.sessions() as session:
            try:
                actor = await actor_for_key(ctx, session, sig.key_id, refresh=refresh)
            except ResolveError as e:
                log.info("key unavailable", extra={"key_id": sig.key_id, "error": str(e)})
                return None
            await session.commit()
            uri, pem = actor.uri, actor.public_key_pem
        if pem is None:
            return None
        ctx.key_cache[sig.key_id] = (uri, pem)
        if check_key(sig, pem):
            return uri
    return None


async def signed_requester(ctx: Context, request: web.Request) -> str | None:
    """The actor that signed this GET, or None if unsigned or invalid (never raises)."""
    if "Signature" not in request.headers and "Signature-Input" not in request.headers:
        if not request.headers.get("Authorization", "").startswith("Signature "):
            return None
    try:
        sig = parse_request_signature(
            request.method, request.raw_path, request.headers, None, base_url=ctx.settings.base_url
        )
    except SignatureError:
        return None
    return await signer_of(ctx, sig)
