"""The one map from error to action: every leaf of the error tree, and a bug, in one table."""

from __future__ import annotations

import dataclasses
import inspect
import random
from pathlib import Path

import pytest

from shared import errors
from shared.broker import LANE_BATCH, LANE_FLEX, LANE_STANDARD
from shared.config import Settings, load_settings
from shared.errors import EditQueueError
from shared.events import Event, EventKind
from tests.worker.conftest import KEY, make_world
from worker.actions import (
    BUDGET_RECHECK_S,
    BUSY_RETRY_S,
    Action,
    Attempt,
    Commit,
    Fail,
    Park,
    Requeue,
    Stop,
    action_for,
    next_quota_reset,
)
from worker.turn import Outcome, TurnRunner

NOW = 1_800_000_000.0
SETTINGS: Settings = load_settings(
    store_url="memory://", broker_url="memory://", max_attempts=3, max_parks=2
)
FIRST = Attempt(1)
LAST = Attempt(3)


class _Rng(random.Random):
    """Jitter pinned to its ceiling (uniform) and zero (random), so countdowns are exact."""

    def uniform(self, a: float, b: float) -> float:
        return b

    def random(self) -> float:
        return 0.0


def _make(cls: type[EditQueueError]) -> EditQueueError:
    if cls is errors.NoToken:
        return cls("gate full", wait_s=4.0)  # type: ignore[call-arg]
    return cls(f"a {cls.__name__}")


def _leaves() -> list[type[EditQueueError]]:
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass)]
    tree = [c for c in classes if issubclass(c, EditQueueError) and c.__module__ == errors.__name__]
    return [c for c in tree if not any(o is not c and issubclass(o, c) for o in tree)]


BASE = SETTINGS.backoff_base_s
# (error, attempt) -> the action; the first attempt, unless the row says otherwise.
TABLE: dict[str, tuple[Attempt, Action]] = {
    # not now: wait without spending the attempt
    "NoToken": (FIRST, Requeue(4.0, 1, LANE_STANDARD, "throttled", "rate_limit", False)),
    "OverBudget": (FIRST, Park(NOW + BUDGET_RECHECK_S, "budget", 1)),
    "Cancelled": (FIRST, Stop()),
    "LeaseHeld": (FIRST, Requeue(BUSY_RETRY_S, 1, LANE_STANDARD, "busy", None, False)),
    # transient: retry with backoff (ceiling 2 s on attempt 1), park an outage when out of tries
    "RateLimited": (FIRST, Requeue(BASE, 2, LANE_STANDARD, "retry")),
    "ServerError": (LAST, Park(NOW + SETTINGS.outage_park_s, "outage", 4)),
    "Timeout": (LAST, Park(NOW + SETTINGS.outage_park_s, "outage", 4)),
    "ConnectionFailed": (FIRST, Requeue(BASE, 2, LANE_STANDARD, "retry")),
    "MalformedResponse": (FIRST, Requeue(BASE, 2, LANE_STANDARD, "retry")),
    "NoImage": (FIRST, Requeue(BASE, 2, LANE_STANDARD, "retry")),
    "StorageUnavailable": (LAST, Fail(3)),
    "BrokerUnavailable": (FIRST, Requeue(BASE, 2, LANE_STANDARD, "retry")),
    "WebhookUnreachable": (LAST, Fail(3)),
    # permanent: fail at once, whatever the attempt
    "BadRequest": (FIRST, Fail(1)),
    "AuthError": (FIRST, Fail(1)),
    "NotFoundError": (FIRST, Fail(1)),
    "Blocked": (FIRST, Fail(1)),
    "HistoryTooLarge": (FIRST, Fail(1)),
    "SessionExists": (FIRST, Fail(1)),
    "StartupRefused": (FIRST, Fail(1)),
    "UnknownSession": (FIRST, Fail(1)),
    "InvalidState": (FIRST, Fail(1)),
    "ObjectNotFound": (LAST, Fail(3)),
    "WebhookRefused": (FIRST, Fail(1)),
    "InteractionGone": (FIRST, Fail(1)),
}


def test_the_table_covers_every_leaf_of_the_error_tree() -> None:
    assert sorted(TABLE) == sorted(c.__name__ for c in _leaves())


def test_every_error_class_has_a_one_line_docstring() -> None:
    for cls in [*_leaves(), errors.TransientError, errors.PermanentError, errors.NotNow]:
        doc = cls.__doc__ or ""
        assert doc and "\n" not in doc.strip(), cls.__name__


@pytest.mark.parametrize("name", sorted(TABLE))
def test_each_leaf_maps_to_its_action(name: str) -> None:
    attempt, expected = TABLE[name]
    error = _make(getattr(errors, name))
    assert action_for(error, attempt, SETTINGS, NOW, _Rng()) == expected


@pytest.mark.parametrize(
    ("error", "attempt", "expected"),
    [
        (None, FIRST, Commit()),
        (ValueError("a bug"), FIRST, Fail(1)),
        (KeyError("a bug"), LAST, Fail(3)),
        # around the call (store, Redis): the same attempt comes back shortly
        (
            errors.StorageUnavailable("s3 down"),
            Attempt(2, in_call=False),
            Requeue(BUSY_RETRY_S, 2, LANE_STANDARD, "requeued", None, False),
        ),
        # a daily quota parks until midnight Pacific; without parks left it fails
        (
            errors.RateLimited("daily", daily=True),
            FIRST,
            Park(next_quota_reset(NOW), "daily_quota", 2),
        ),
        (errors.RateLimited("daily", daily=True), Attempt(1, parks=2), Fail(1)),
        (errors.ServerError("down"), Attempt(3, parks=2), Fail(3)),
        # a flex turn past its deadline goes to standard; batch lines wait for the next wave
        (
            errors.Timeout("slow"),
            Attempt(1, lane=LANE_FLEX),
            Requeue(0.0, 2, LANE_STANDARD, "fallback", "flex_fallback"),
        ),
        (
            errors.ServerError("down"),
            Attempt(1, lane=LANE_BATCH),
            Requeue(0.0, 2, LANE_BATCH, "retry", "batch"),
        ),
        (errors.ServerError("down"), Attempt(3, lane=LANE_BATCH), Fail(3)),
        (errors.Blocked("safety"), Attempt(1, lane=LANE_BATCH), Fail(1)),
        # a NoImage answer has its own, shorter limit
        (
            errors.NoImage("none"),
            Attempt(SETTINGS.no_image_attempts),
            Fail(SETTINGS.no_image_attempts),
        ),
    ],
)
def test_the_rows_that_depend_on_where_the_turn_stood(
    error: BaseException | None, attempt: Attempt, expected: Action
) -> None:
    assert action_for(error, attempt, SETTINGS, NOW, _Rng()) == expected


@dataclasses.dataclass
class RecordingSink:
    events: list[Event] = dataclasses.field(default_factory=list)

    def emit(self, event: Event) -> None:
        self.events.append(event)


def test_a_bug_inside_a_turn_fails_it_like_any_error(tmp_path: Path) -> None:
    """failure.json with the redacted message, turn.failed and session.failed, park dropped."""
    world = make_world(tmp_path, [ValueError(f"bad state with key={KEY}")])
    sink = RecordingSink()
    services = dataclasses.replace(world.services, events=sink)
    sid = world.session(["a", "b"])
    world.coord.index_park(sid, 1, NOW)  # a stale park of this turn: the failure drops it

    outcome = TurnRunner(services, owner="t").run(sid, 1, 1)

    assert outcome is Outcome.FAILED
    failure = world.repo.failure(sid, 1)
    assert failure is not None
    assert failure.error.kind == "internal"
    assert "ValueError" in failure.error.message and "bad state" in failure.error.message
    assert KEY not in failure.error.message
    kinds = [(e.kind, e.turn) for e in sink.events]
    assert kinds == [(EventKind.TURN_FAILED, 1), (EventKind.SESSION_FAILED, 1)]
    assert all(KEY not in e.model_dump_json() for e in sink.events)
    assert world.coord.live(sid) == {} and world.coord.due_parks(NOW + 1, 10) == []
    assert world.enqueuer.calls == []  # the chain stops
