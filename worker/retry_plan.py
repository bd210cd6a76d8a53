"""What to do after a transient failure: a short countdown, a park, or give up. Pure."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from shared.backoff import backoff_s
from shared.config import Settings
from shared.errors import NoImage, RateLimited, Timeout, TransientError

# Errors that mean "the API is down", for which a long outage parks the turn instead of failing.
OUTAGE_KINDS = frozenset({"server_error", "timeout", "connection", "malformed_response"})
QUOTA_TZ = ZoneInfo("America/Los_Angeles")  # per-day quotas reset at midnight Pacific


@dataclass(frozen=True)
class Requeue:
    """Try again after a countdown short enough for the broker to hold."""

    countdown_s: float


@dataclass(frozen=True)
class Park:
    """Wait longer than the broker may hold a message: the sweep re-enqueues at `due_at`."""

    due_at: float
    reason: str


@dataclass(frozen=True)
class GiveUp:
    """No more attempts: the turn fails with this error."""


Plan = Requeue | Park | GiveUp
SHED_STATUS = 503  # how Flex sheds load (Google's optimization page)


def flex_falls_back(exc: TransientError, attempt: int, settings: Settings) -> bool:
    """A flex attempt goes to the standard tier when it ran past the flex deadline, or when it
    was shed (503) on its `flex_max_sheds`-th attempt (attempts count every transient error)."""
    if isinstance(exc, Timeout):
        return True
    return exc.status == SHED_STATUS and attempt >= settings.flex_max_sheds


def next_quota_reset(now: float) -> float:
    """Unix time of the next midnight in the Pacific time zone."""
    local = datetime.fromtimestamp(now, QUOTA_TZ)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.timestamp()


def plan_retry(
    exc: TransientError,
    attempt: int,
    parks: int,
    settings: Settings,
    now: float,
    rng: random.Random,
) -> Plan:
    """The next step for a turn whose attempt `attempt` failed with `exc` after `parks` parks."""
    can_park = parks < settings.max_parks
    if isinstance(exc, NoImage):
        exhausted = attempt >= settings.no_image_attempts
        return GiveUp() if exhausted else Requeue(settings.backoff_base_s)
    if isinstance(exc, RateLimited) and exc.daily:
        return Park(next_quota_reset(now), "daily_quota") if can_park else GiveUp()
    if attempt >= settings.max_attempts:
        if exc.kind in OUTAGE_KINDS and can_park:
            return Park(now + settings.outage_park_s, "outage")
        return GiveUp()
    retry_after = exc.retry_after_s if isinstance(exc, RateLimited) else None
    delay = backoff_s(
        attempt,
        base_s=settings.backoff_base_s,
        cap_s=settings.max_countdown_s,
        retry_after_s=retry_after,
        rng=rng,
    )
    if delay > settings.max_countdown_s:
        return Park(now + delay, "retry_delay") if can_park else GiveUp()
    return Requeue(delay)
