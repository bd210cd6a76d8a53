"""When to try a failed call again: exponential backoff with full jitter, honouring retryDelay."""

from __future__ import annotations

import random


def backoff_s(
    attempt: int,
    *,
    base_s: float,
    cap_s: float,
    retry_after_s: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before attempt `attempt + 1`; never less than the API's retryDelay."""
    ceiling = min(cap_s, base_s * 2 ** max(0, attempt - 1))
    jittered = (rng or random).uniform(ceiling / 2, ceiling)
    return max(jittered, retry_after_s or 0.0)
