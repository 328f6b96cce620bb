"""Redelivery schedule, Mastodon-like: 16 retries spread over about two and a half days.

Retry n (1-based) waits (n-1)^4 + 5 s plus up to 10·n s of jitter: the first retry comes
within 15 s, the 16th about 14 hours after the 15th; the sum is ≈ 2.1–2.3 days. `scale`
shrinks the whole schedule for development and tests (T3R1_BACKOFF_SCALE).
"""

from __future__ import annotations

import random

MAX_RETRIES = 16


def retry_delay(attempt: int, *, scale: float = 1.0, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number `attempt` (1 = first retry)."""
    if attempt < 1:
        raise ValueError("attempt starts at 1")
    r = (rng or random).random()
    return ((attempt - 1) ** 4 + 5 + r * 10 * attempt) * scale


def next_delay(
    attempt: int, retry_after: float | None, *, scale: float = 1.0, rng: random.Random | None = None
) -> float | None:
    """Delay before the next try after `attempt` failures, or None to give up.

    A peer's `Retry-After` is honoured when it asks for longer than our schedule (capped at
    a day, so a hostile header cannot park a delivery forever).
    """
    if attempt > MAX_RETRIES:
        return None
    delay = retry_delay(attempt, scale=scale, rng=rng)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(retry_after, 86_400.0))
    return delay


def circuit_delay(consecutive_failures: int, *, scale: float = 1.0) -> float:
    """How long a host's circuit stays open after `consecutive_failures` transport failures.

    Closed for the first 5 failures (a blip must not stall a fan-out), then 30 s doubling
    to at most one hour.
    """
    if consecutive_failures < 5:
        return 0.0
    return float(min(30.0 * 2.0 ** (consecutive_failures - 5), 3600.0) * scale)
