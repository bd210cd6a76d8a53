"""The one map from an error to what happens to the turn: commit, requeue, park, fail or stop.

`action_for` is pure (the clock and the jitter come in as arguments); the turn runner, the
Celery task and the batch wave commit only carry out the action it returns.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from shared.broker import LANE_BATCH, LANE_FLEX, LANE_STANDARD
from shared.config import Settings
from shared.errors import (
    Cancelled,
    LeaseHeld,
    NoImage,
    NotNow,
    NoToken,
    OverBudget,
    RateLimited,
    Timeout,
    TransientError,
)
from worker.backoff import backoff_s

# Errors that mean "the API is down", for which a long outage parks the turn instead of failing.
OUTAGE_KINDS = frozenset({"server_error", "timeout", "connection", "malformed_response"})
QUOTA_TZ = ZoneInfo("America/Los_Angeles")  # per-day quotas reset at midnight Pacific
SHED_STATUS = 503  # how Flex sheds load (Google's optimization page)
BUSY_RETRY_S = 5.0  # a held lease, or a store/Redis hiccup outside the API call
BUDGET_RECHECK_S = 900.0  # how often a turn parked on a budget looks again


@dataclass(frozen=True)
class Attempt:
    """Where the turn stood when the error came."""

    number: int  # the attempt that ran (1 = first)
    parks: int = 0  # parks so far, as the sweep's unpark leaves them
    lane: str = LANE_STANDARD  # the tier this delivery called at
    in_call: bool = True  # False: the error came around the API call (store, Redis), not from it


@dataclass(frozen=True)
class Commit:
    """No error: the answer is committed."""


@dataclass(frozen=True)
class Requeue:
    """Back on the queue after a countdown short enough for the broker to hold."""

    countdown_s: float
    attempt: int  # the attempt number the next delivery carries
    lane: str
    outcome: str  # retry, throttled, busy, fallback or batch (the task's return value)
    reason: str | None = None  # shown in the live status
    shows_error: bool = True  # whether the status shows the error that caused it


@dataclass(frozen=True)
class Park:
    """Out of the broker until `due_at`; the sweep re-enqueues it then."""

    due_at: float
    reason: str
    attempt: int


@dataclass(frozen=True)
class Fail:
    """No more attempts: `failure.json` with the reason, and the session stops."""

    attempt: int


@dataclass(frozen=True)
class Stop:
    """The session was cancelled: the turn ends without a failure."""


Action = Commit | Requeue | Park | Fail | Stop


def action_for(
    error: BaseException | None,
    attempt: Attempt,
    settings: Settings,
    now: float,
    rng: random.Random,
) -> Action:
    """What to do with a turn whose attempt ended with `error` (None: it has an answer).

    Not-now outcomes wait without spending the attempt, transient errors retry, park or give up,
    and everything else (permanent errors and bugs alike) fails the turn.
    """
    if error is None:
        return Commit()
    if isinstance(error, NotNow):
        return _not_now(error, attempt, now, settings, rng)
    if isinstance(error, TransientError):
        return _transient(error, attempt, settings, now, rng)
    return Fail(attempt.number)


def _not_now(
    error: NotNow, attempt: Attempt, now: float, settings: Settings, rng: random.Random
) -> Action:
    if isinstance(error, Cancelled):
        return Stop()
    if isinstance(error, OverBudget):
        return Park(now + BUDGET_RECHECK_S, "budget", attempt.number)
    if isinstance(error, NoToken):
        wait = min(settings.max_countdown_s, error.wait_s + rng.random())
        return Requeue(wait, attempt.number, attempt.lane, "throttled", "rate_limit", False)
    assert isinstance(error, LeaseHeld), f"a NotNow leaf without an action: {error.kind}"
    return Requeue(BUSY_RETRY_S, attempt.number, attempt.lane, "busy", None, False)


def _transient(
    error: TransientError, attempt: Attempt, settings: Settings, now: float, rng: random.Random
) -> Action:
    number, lane = attempt.number, attempt.lane
    if not attempt.in_call:  # a store or Redis hiccup: the same attempt comes back shortly
        return Requeue(BUSY_RETRY_S, number, lane, "requeued", None, False)
    if lane == LANE_BATCH:  # the next wave, until max_attempts
        if number >= settings.max_attempts:
            return Fail(number)
        return Requeue(0.0, number + 1, LANE_BATCH, "retry", "batch")
    if lane == LANE_FLEX and flex_falls_back(error, number, settings):
        return Requeue(0.0, number + 1, LANE_STANDARD, "fallback", "flex_fallback")
    return _retry(error, attempt, settings, now, rng)


def _retry(
    error: TransientError, attempt: Attempt, settings: Settings, now: float, rng: random.Random
) -> Action:
    number = attempt.number
    can_park = attempt.parks < settings.max_parks
    give_up = Fail(number)
    if isinstance(error, NoImage):
        exhausted = number >= settings.no_image_attempts
        return (
            give_up
            if exhausted
            else Requeue(settings.backoff_base_s, number + 1, attempt.lane, "retry")
        )
    if isinstance(error, RateLimited) and error.daily:
        return Park(next_quota_reset(now), "daily_quota", number + 1) if can_park else give_up
    if number >= settings.max_attempts:
        if error.kind in OUTAGE_KINDS and can_park:
            return Park(now + settings.outage_park_s, "outage", number + 1)
        return give_up
    retry_after = error.retry_after_s if isinstance(error, RateLimited) else None
    delay = backoff_s(
        number,
        base_s=settings.backoff_base_s,
        cap_s=settings.max_countdown_s,
        retry_after_s=retry_after,
        rng=rng,
    )
    if delay > settings.max_countdown_s:
        return Park(now + delay, "retry_delay", number + 1) if can_park else give_up
    return Requeue(delay, number + 1, attempt.lane, "retry")


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
