"""The status document: store facts (committed, failed) win over the live index's hints."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.coordination import LiveTurn
from shared.models import SessionState, TurnState
from shared.session_records import SessionRecord
from shared.sessions import SessionSnapshot
from shared.status import build_status, session_state, turn_state, turn_status
from shared.status_document import TurnStatus
from shared.turn_records import (
    AttemptRecord,
    ErrorInfo,
    FailureRecord,
    ImageInfo,
    TurnRequest,
    TurnResult,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
RECORD = SessionRecord(session_id="s1", model="gemini-3.1-flash-image", created_at=NOW)
IMAGE = ImageInfo(blob="f" * 64, mime_type="image/jpeg", width=2752, height=1536, bytes=3_500_000)
QUOTA = ErrorInfo(kind="rate_limited", status=429, message="quota exhausted")
BLOCKED = ErrorInfo(kind="blocked", status=None, message="prompt blocked: SAFETY")


def req(index: int, revision: int = 1) -> TurnRequest:
    return TurnRequest(index=index, prompt=f"p{index}", revision=revision, created_at=NOW)


def res(index: int, *, cost: float = 0.101, attempt: int = 1) -> TurnResult:
    return TurnResult(
        index=index,
        parts=[],
        image=IMAGE,
        finish_reason="STOP",
        usage={"promptTokenCount": 10 * index},
        latency_s=20.5,
        attempt=attempt,
        cost_usd=cost,
        committed_at=NOW,
    )


def fail(index: int, revision: int = 1, attempts: int = 6) -> FailureRecord:
    return FailureRecord(
        index=index, error=BLOCKED, attempts=attempts, request_revision=revision, failed_at=NOW
    )


def snap(
    n_requests: int,
    *,
    results: tuple[int, ...] | list[int] = (),
    failures: dict[int, int] | None = None,
    revisions: dict[int, int] | None = None,
    cancelled: bool = False,
) -> SessionSnapshot:
    """A snapshot with requests 1..n, results for `results`, failures {index: revision}."""
    revisions = revisions or {}
    return SessionSnapshot(
        record=RECORD,
        requests={n: req(n, revisions.get(n, 1)) for n in range(1, n_requests + 1)},
        results={n: res(n) for n in results},
        failures={n: fail(n, rev) for n, rev in (failures or {}).items()},
        cancelled=cancelled,
    )


RUNNING = LiveTurn(state=TurnState.RUNNING, attempts=2, error=QUOTA)
QUEUED = LiveTurn(state=TurnState.QUEUED, attempts=1)
PARKED = LiveTurn(state=TurnState.WAITING, attempts=3, reason="daily quota", due_at=1e9)


TURN_STATE_CASES = [
    ("committed", snap(2, results=[1]), 1, None, TurnState.SUCCEEDED),
    ("committed beats a stale live hint", snap(2, results=[1]), 1, RUNNING, TurnState.SUCCEEDED),
    ("committed beats cancel", snap(2, results=[1], cancelled=True), 1, None, TurnState.SUCCEEDED),
    (
        "committed beats a failure",
        snap(1, results=[1], failures={1: 1}),
        1,
        None,
        TurnState.SUCCEEDED,
    ),
    ("failed for the current revision", snap(2, failures={1: 1}), 1, None, TurnState.FAILED),
    ("failed beats a live hint", snap(2, failures={1: 1}), 1, RUNNING, TurnState.FAILED),
    ("failed beats cancel", snap(2, failures={1: 1}, cancelled=True), 1, None, TurnState.FAILED),
    (
        "failed at revision 2 of a reworded turn",
        snap(1, failures={1: 2}, revisions={1: 2}),
        1,
        None,
        TurnState.FAILED,
    ),
    (
        "old-revision failure of a retried turn is not failed: live running",
        snap(1, failures={1: 1}, revisions={1: 2}),
        1,
        RUNNING,
        TurnState.RUNNING,
    ),
    (
        "old-revision failure of a retried turn is not failed: nothing live",
        snap(1, failures={1: 1}, revisions={1: 2}),
        1,
        None,
        TurnState.QUEUED,
    ),
    ("cancelled", snap(2, results=[1], cancelled=True), 2, None, TurnState.CANCELLED),
    (
        "cancelled beats a live hint",
        snap(2, results=[1], cancelled=True),
        2,
        RUNNING,
        TurnState.CANCELLED,
    ),
    ("live running", snap(2, results=[1]), 2, RUNNING, TurnState.RUNNING),
    ("live queued", snap(2, results=[1]), 2, QUEUED, TurnState.QUEUED),
    ("live waiting (parked)", snap(2, results=[1]), 2, PARKED, TurnState.WAITING),
    ("first turn, nothing live: queued", snap(1), 1, None, TurnState.QUEUED),
    (
        "predecessor committed, nothing live: queued",
        snap(3, results=[1, 2]),
        3,
        None,
        TurnState.QUEUED,
    ),
    ("waiting for predecessor", snap(3, results=[1]), 3, None, TurnState.WAITING),
    ("waiting behind a failed predecessor", snap(2, failures={1: 1}), 2, None, TurnState.WAITING),
]


@pytest.mark.parametrize(
    ("snapshot", "index", "live", "state"),
    [pytest.param(*case[1:], id=case[0]) for case in TURN_STATE_CASES],
)
def test_turn_state_derivation(
    snapshot: SessionSnapshot, index: int, live: LiveTurn | None, state: TurnState
) -> None:
    assert turn_state(snapshot, index, live) is state


def test_a_failure_without_a_request_is_not_a_failed_turn() -> None:
    snapshot = SessionSnapshot(record=RECORD, failures={1: fail(1)})
    assert turn_state(snapshot, 1, None) is TurnState.QUEUED


def test_turn_status_of_a_committed_turn_comes_from_its_result() -> None:
    snapshot = snap(1, results=[1])
    snapshot.results[1] = res(1, cost=0.151, attempt=3)
    assert turn_status(snapshot, 1, RUNNING) == TurnStatus(
        index=1,
        state=TurnState.SUCCEEDED,
        attempts=3,
        finish_reason="STOP",
        image=IMAGE,
        usage={"promptTokenCount": 10},
        latency_s=20.5,
        cost_usd=0.151,
        prompt="p1",
        attempt_history=[
            AttemptRecord(
                index=1,
                attempt=3,
                outcome="committed",
                latency_s=20.5,
                ended_at=snapshot.results[1].committed_at,
            )
        ],
    )


def test_a_timed_out_attempt_keeps_its_latency_in_the_committed_turns_history() -> None:
    snapshot = snap(1, results=[1])
    snapshot.results[1] = res(1, cost=0.151, attempt=2)
    timeout = ErrorInfo(kind="timeout", message="the API did not answer within 35s")
    ended = snapshot.results[1].committed_at
    earlier = AttemptRecord(
        index=1, attempt=1, outcome="retried", latency_s=35.0, error=timeout, ended_at=ended
    )
    stale = earlier.model_copy(update={"request_revision": 2, "latency_s": 1.0})
    snapshot.attempts[1] = [stale, earlier]

    history = turn_status(snapshot, 1, None).attempt_history

    assert [(a.attempt, a.outcome, a.latency_s) for a in history] == [
        (1, "retried", 35.0),
        (2, "committed", 20.5),
    ]
    assert history[0].error == timeout


def test_turn_status_of_a_failed_turn_shows_the_stored_error_and_attempts() -> None:
    status = turn_status(snap(1, failures={1: 1}), 1, RUNNING)
    assert status.state is TurnState.FAILED
    assert status.attempts == 6
    assert status.error == BLOCKED
    assert status.image is None
    assert status.cost_usd == 0.0


def test_turn_status_of_a_retried_turn_shows_the_live_error_not_the_old_failure() -> None:
    status = turn_status(snap(1, failures={1: 1}, revisions={1: 2}), 1, RUNNING)
    assert status.state is TurnState.RUNNING
    assert status.attempts == 2
    assert status.error == QUOTA


def test_turn_status_of_a_retried_turn_with_nothing_live_has_no_error() -> None:
    status = turn_status(snap(1, failures={1: 1}, revisions={1: 2}), 1, None)
    assert (status.state, status.attempts, status.error) == (TurnState.QUEUED, 0, None)


def test_turn_status_shows_the_waiting_reason_of_a_parked_turn() -> None:
    status = turn_status(snap(2, results=[1]), 2, PARKED)
    assert status.waiting_reason == "daily quota"
    assert status.attempts == 3


def test_turn_status_shows_no_waiting_reason_unless_the_turn_waits() -> None:
    live = LiveTurn(state=TurnState.RUNNING, reason="daily quota")
    assert turn_status(snap(2, results=[1]), 2, live).waiting_reason is None


S, F, R, Q, W, C = (
    TurnState.SUCCEEDED,
    TurnState.FAILED,
    TurnState.RUNNING,
    TurnState.QUEUED,
    TurnState.WAITING,
    TurnState.CANCELLED,
)


@pytest.mark.parametrize(
    ("states", "cancelled", "expected"),
    [
        ([S], False, SessionState.COMPLETED),
        ([S, S, S], False, SessionState.COMPLETED),
        ([S, S], True, SessionState.COMPLETED),
        ([S, F, W], False, SessionState.FAILED),
        ([F], True, SessionState.FAILED),
        ([S, F, C], True, SessionState.FAILED),
        ([S, C, C], True, SessionState.CANCELLED),
        ([C], True, SessionState.CANCELLED),
        ([S, R, W], False, SessionState.RUNNING),
        ([S, Q], False, SessionState.RUNNING),
        ([S, W], False, SessionState.RUNNING),
        ([R], False, SessionState.RUNNING),
        ([Q, W, W], False, SessionState.QUEUED),
        ([W], False, SessionState.QUEUED),
        ([], False, SessionState.QUEUED),
        ([], True, SessionState.CANCELLED),
    ],
)
def test_session_state_from_turn_states(
    states: list[TurnState], cancelled: bool, expected: SessionState
) -> None:
    turns = [TurnStatus(index=i, state=s) for i, s in enumerate(states, start=1)]
    assert session_state(turns, cancelled) is expected


def test_build_status_merges_store_and_live_index_and_sums_cost() -> None:
    snapshot = snap(4, results=[1, 2])
    snapshot.results[1] = res(1, cost=0.1)
    snapshot.results[2] = res(2, cost=0.2)
    status = build_status(snapshot, {3: RUNNING, 9: QUEUED})
    assert status.session_id == "s1"
    assert status.model == "gemini-3.1-flash-image"
    assert status.state is SessionState.RUNNING
    assert [t.index for t in status.turns] == [1, 2, 3, 4]
    assert [t.state for t in status.turns] == [S, S, R, W]
    assert status.cost_usd == 0.3  # rounded, not 0.30000000000000004


def test_build_status_of_a_fully_committed_session_is_completed() -> None:
    status = build_status(snap(3, results=[1, 2, 3]), {})
    assert status.state is SessionState.COMPLETED
    assert status.cost_usd == round(3 * 0.101, 6)


def test_build_status_of_a_session_with_a_failed_turn_is_failed_and_later_turns_wait() -> None:
    status = build_status(snap(3, results=[1], failures={2: 1}), {})
    assert status.state is SessionState.FAILED
    assert [t.state for t in status.turns] == [S, F, W]


def test_build_status_of_a_cancelled_session_marks_the_uncommitted_turns_cancelled() -> None:
    status = build_status(snap(3, results=[1], cancelled=True), {2: RUNNING})
    assert status.state is SessionState.CANCELLED
    assert [t.state for t in status.turns] == [S, C, C]


def test_status_document_serialises_states_as_their_lowercase_names() -> None:
    doc = build_status(snap(2, results=[1]), {}).model_dump(mode="json")
    assert doc["state"] == "running"
    assert [t["state"] for t in doc["turns"]] == ["succeeded", "queued"]
    assert doc["turns"][1]["error"] is None
    assert doc["turns"][0]["image"] == {
        "blob": "f" * 64,
        "mime_type": "image/jpeg",
        "width": 2752,
        "height": 1536,
        "bytes": 3_500_000,
    }
