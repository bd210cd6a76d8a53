"""Backoff: exponential, jittered between half and all of the ceiling, never below retryDelay."""

from __future__ import annotations

import random

import pytest

from worker.backoff import backoff_s


class Extremes(random.Random):
    """An rng whose uniform() returns the low or the high end of the range."""

    def __init__(self, high: bool) -> None:
        super().__init__(0)
        self.high = high
        self.calls: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.calls.append((a, b))
        return b if self.high else a


@pytest.mark.parametrize(
    ("attempt", "base_s", "cap_s", "low", "high"),
    [
        (0, 2.0, 60.0, 1.0, 2.0),
        (1, 2.0, 60.0, 1.0, 2.0),
        (2, 2.0, 60.0, 2.0, 4.0),
        (3, 2.0, 60.0, 4.0, 8.0),
        (5, 2.0, 60.0, 16.0, 32.0),
        (6, 2.0, 60.0, 30.0, 60.0),  # 64 capped at 60
        (50, 2.0, 60.0, 30.0, 60.0),
        (4, 0.5, 100.0, 2.0, 4.0),
        (3, 1.0, 3.0, 1.5, 3.0),
    ],
)
def test_backoff_is_jittered_between_half_and_the_whole_capped_ceiling(
    attempt: int, base_s: float, cap_s: float, low: float, high: float
) -> None:
    lo_rng, hi_rng = Extremes(high=False), Extremes(high=True)
    assert backoff_s(attempt, base_s=base_s, cap_s=cap_s, rng=lo_rng) == low
    assert backoff_s(attempt, base_s=base_s, cap_s=cap_s, rng=hi_rng) == high
    assert lo_rng.calls == [(low, high)]


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 8, 30])
def test_backoff_with_a_real_rng_stays_inside_the_bounds(attempt: int) -> None:
    rng = random.Random(1234)
    ceiling = min(60.0, 2.0 * 2 ** (attempt - 1))
    values = [backoff_s(attempt, base_s=2.0, cap_s=60.0, rng=rng) for _ in range(500)]
    assert all(ceiling / 2 <= v <= ceiling for v in values)
    assert len(set(values)) > 400  # jittered, not a constant


def test_backoff_is_reproducible_with_a_seeded_rng() -> None:
    first = [backoff_s(n, base_s=1.0, cap_s=30.0, rng=random.Random(7)) for n in range(1, 6)]
    again = [backoff_s(n, base_s=1.0, cap_s=30.0, rng=random.Random(7)) for n in range(1, 6)]
    assert first == again


@pytest.mark.parametrize(
    ("retry_after_s", "high", "expected"),
    [
        (None, False, 4.0),
        (0.0, False, 4.0),
        (3.0, False, 4.0),  # jitter already waits longer
        (5.0, False, 5.0),
        (7.5, True, 8.0),
        (8.0, True, 8.0),
        (8.5, True, 8.5),
        (120.0, True, 120.0),  # retryDelay above the cap is still honoured
    ],
)
def test_backoff_never_waits_less_than_the_apis_retry_delay(
    retry_after_s: float | None, high: bool, expected: float
) -> None:
    wait = backoff_s(4, base_s=1.0, cap_s=60.0, retry_after_s=retry_after_s, rng=Extremes(high))
    assert wait == expected


def test_backoff_without_an_rng_uses_the_module_random() -> None:
    random.seed(99)
    values = {backoff_s(3, base_s=2.0, cap_s=60.0) for _ in range(50)}
    assert all(4.0 <= v <= 8.0 for v in values)
    assert len(values) > 1
