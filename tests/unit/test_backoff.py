"""The redelivery schedule and the delivery outcome policy (pure functions)."""

from __future__ import annotations

import random

import pytest

from t3r1_fed.federation.backoff import MAX_RETRIES, circuit_delay, next_delay, retry_delay
from t3r1_fed.federation.delivery import classify


def test_first_retry_within_15_seconds() -> None:
    for seed in range(200):
        assert 5 <= retry_delay(1, rng=random.Random(seed)) <= 15


def test_schedule_is_increasing_and_spans_two_to_three_days() -> None:
    lo = [retry_delay(n, rng=_Fixed(0.0)) for n in range(1, MAX_RETRIES + 1)]
    hi = [retry_delay(n, rng=_Fixed(0.999999)) for n in range(1, MAX_RETRIES + 1)]
    assert lo == sorted(lo)
    days_lo, days_hi = sum(lo) / 86400, sum(hi) / 86400
    assert 2.0 <= days_lo <= days_hi <= 3.0, (days_lo, days_hi)


def test_give_up_after_max_retries() -> None:
    assert next_delay(MAX_RETRIES, None) is not None
    assert next_delay(MAX_RETRIES + 1, None) is None


def test_retry_after_is_honoured_but_capped() -> None:
    assert next_delay(1, 120.0, rng=_Fixed(0.0)) == 120.0
    assert next_delay(1, 10 * 86400.0, rng=_Fixed(0.0)) == 86400.0  # a hostile header is capped
    assert next_delay(1, 1.0, rng=_Fixed(0.0)) == 5.0  # shorter than our schedule: ours wins


def test_scale_shrinks_everything() -> None:
    assert retry_delay(3, scale=0.01, rng=_Fixed(0.0)) == pytest.approx((16 + 5) * 0.01)
    assert circuit_delay(6, scale=0.5) == 30.0


def test_circuit_closed_for_first_failures_then_doubles_to_one_hour() -> None:
    assert [circuit_delay(n) for n in range(5)] == [0.0] * 5
    assert circuit_delay(5) == 30.0 and circuit_delay(6) == 60.0
    assert circuit_delay(50) == 3600.0


@pytest.mark.parametrize(
    ("status", "attempts", "state", "host_ok"),
    [
        (202, 1, "done", True),
        (200, 3, "done", True),
        (410, 1, "gone", True),
        (404, 1, "failed", True),
        (400, 1, "failed", True),
        (403, 1, "failed", True),
        (401, 1, "pending", True),  # retried once: the peer may be refreshing our key
        (401, 2, "failed", True),
        (408, 1, "pending", True),
        (429, 4, "pending", True),
        (500, 1, "pending", False),
        (503, 9, "pending", False),
        (None, 1, "pending", False),  # transport error
    ],
)
def test_classify(status: int | None, attempts: int, state: str, host_ok: bool) -> None:
    out = classify(status, attempts, retry_after=7.0)
    assert out.state == state
    assert out.host_ok is host_ok


def test_classify_keeps_retry_after_only_for_retryable() -> None:
    assert classify(429, 1, retry_after=30.0).retry_after == 30.0
    assert classify(503, 1, retry_after=30.0).retry_after == 30.0
    assert classify(400, 1, retry_after=30.0).retry_after is None


class _Fixed(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value
