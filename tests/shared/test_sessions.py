"""SessionRepository over MemoryStore: the key layout, create-once writes, snapshots."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest

from shared.errors import UnknownSession
from shared.session_records import SessionRecord
from shared.session_spec import HistoryPolicy
from shared.sessions import (
    SessionRepository,
    SessionSnapshot,
    cancel_key,
    session_key,
    turn_key,
)
from shared.storage import MemoryStore
from shared.turn_records import ErrorInfo, FailureRecord, ImageInfo, TurnRequest, TurnResult

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def record(sid: str = "s1", model: str = "gemini-3.1-flash-image") -> SessionRecord:
    return SessionRecord(
        session_id=sid,
        model=model,
        aspect_ratio="16:9",
        image_size="2K",
        history=HistoryPolicy(anchor="first", keep_last=2),
        created_at=NOW,
    )


def request(index: int, prompt: str = "p", revision: int = 1) -> TurnRequest:
    return TurnRequest(index=index, prompt=prompt, revision=revision, created_at=NOW)


def result(index: int, attempt: int = 1, blob: str = "a") -> TurnResult:
    return TurnResult(
        index=index,
        parts=[],
        image=ImageInfo(blob=blob * 64, mime_type="image/jpeg", width=1, height=1, bytes=1),
        latency_s=1.0,
        attempt=attempt,
        cost_usd=0.1,
        committed_at=NOW,
    )


def failure(index: int, message: str = "blocked", revision: int = 1) -> FailureRecord:
    return FailureRecord(
        index=index,
        error=ErrorInfo(kind="blocked", message=message),
        attempts=1,
        request_revision=revision,
        failed_at=NOW,
    )


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def repo(store: MemoryStore) -> SessionRepository:
    return SessionRepository(store)


def test_keys_follow_the_documented_layout() -> None:
    assert session_key("s1") == "sessions/s1/session.json"
    assert turn_key("s1", 1, "request.json") == "sessions/s1/turns/0001/request.json"
    assert turn_key("s1", 123, "result.json") == "sessions/s1/turns/0123/result.json"
    assert turn_key("s1", 10000, "failure.json") == "sessions/s1/turns/10000/failure.json"
    assert cancel_key("s1") == "sessions/s1/cancel"


def test_a_session_is_created_once(repo: SessionRepository, store: MemoryStore) -> None:
    assert repo.create_session(record()) is True
    assert repo.create_session(record(model="gemini-3-pro-image")) is False
    assert repo.session("s1") == record()
    assert json.loads(store.get("sessions/s1/session.json"))["model"] == "gemini-3.1-flash-image"


def test_an_unknown_session_raises_unknown_session(repo: SessionRepository) -> None:
    with pytest.raises(UnknownSession, match="session nope does not exist"):
        repo.session("nope")
    with pytest.raises(UnknownSession):
        repo.snapshot("nope")


def test_a_turn_request_is_created_once(repo: SessionRepository) -> None:
    assert repo.add_request("s1", request(1, "first")) is True
    assert repo.add_request("s1", request(1, "second")) is False
    assert repo.request("s1", 1) == request(1, "first")
    assert repo.request("s1", 2) is None


def test_replace_request_rewords_a_turn(repo: SessionRepository) -> None:
    repo.add_request("s1", request(1, "first"))
    repo.replace_request("s1", request(1, "reworded", revision=2))
    assert repo.request("s1", 1) == request(1, "reworded", revision=2)


def test_the_first_commit_wins(repo: SessionRepository) -> None:
    winner, won = repo.commit_result("s1", result(1, attempt=1, blob="a"))
    assert (winner, won) == (result(1, attempt=1, blob="a"), True)
    assert repo.result("s1", 1) == result(1, attempt=1, blob="a")


def test_a_losing_commit_gets_the_winners_result(repo: SessionRepository) -> None:
    repo.commit_result("s1", result(1, attempt=1, blob="a"))
    winner, won = repo.commit_result("s1", result(1, attempt=2, blob="b"))
    assert won is False
    assert winner == result(1, attempt=1, blob="a")
    assert repo.result("s1", 1) == result(1, attempt=1, blob="a")


def test_concurrent_commits_of_one_turn_have_exactly_one_winner(repo: SessionRepository) -> None:
    outcomes: list[tuple[TurnResult, bool]] = []
    barrier = threading.Barrier(8)

    def commit(attempt: int) -> None:
        barrier.wait()
        outcomes.append(repo.commit_result("s1", result(1, attempt=attempt)))

    threads = [threading.Thread(target=commit, args=(n,)) for n in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r, won in outcomes if won]
    assert len(winners) == 1
    assert {r.attempt for r, _ in outcomes} == {winners[0].attempt}
    assert repo.result("s1", 1) == winners[0]


def test_is_committed_counts_turn_zero_and_committed_turns(repo: SessionRepository) -> None:
    repo.commit_result("s1", result(1))
    assert repo.is_committed("s1", 0) is True
    assert repo.is_committed("s1", 1) is True
    assert repo.is_committed("s1", 2) is False


def test_a_failure_is_replaced_and_cleared(repo: SessionRepository) -> None:
    repo.record_failure("s1", failure(1, "first"))
    repo.record_failure("s1", failure(1, "second", revision=2))
    assert repo.failure("s1", 1) == failure(1, "second", revision=2)
    repo.clear_failure("s1", 1)
    assert repo.failure("s1", 1) is None
    repo.clear_failure("s1", 1)  # clearing twice is fine
    assert repo.failure("s1", 1) is None


def test_cancel_sets_the_marker(repo: SessionRepository, store: MemoryStore) -> None:
    assert repo.is_cancelled("s1") is False
    repo.cancel("s1")
    repo.cancel("s1")
    assert repo.is_cancelled("s1") is True
    assert store.get("sessions/s1/cancel") == b""


def test_snapshot_reads_requests_results_failures_and_cancel(repo: SessionRepository) -> None:
    repo.create_session(record())
    for n in (1, 2, 3):
        repo.add_request("s1", request(n, f"p{n}"))
    repo.commit_result("s1", result(1))
    repo.record_failure("s1", failure(2))
    repo.cancel("s1")
    snap = repo.snapshot("s1")
    assert snap == SessionSnapshot(
        record=record(),
        requests={1: request(1, "p1"), 2: request(2, "p2"), 3: request(3, "p3")},
        results={1: result(1)},
        failures={2: failure(2)},
        cancelled=True,
    )
    assert snap.last_index == 3


def test_snapshot_through_a_turn_reads_nothing_of_later_turns(
    repo: SessionRepository, store: MemoryStore
) -> None:
    repo.create_session(record())
    for n in (1, 2, 3, 4):
        repo.add_request("s1", request(n, f"p{n}"))
    repo.commit_result("s1", result(1))
    repo.record_failure("s1", failure(3))
    repo.cancel("s1")
    reads: list[str] = []
    get = store.get
    store.get = lambda key: reads.append(key) or get(key)  # type: ignore[method-assign]

    snap = repo.snapshot("s1", through=2)

    assert (sorted(snap.requests), sorted(snap.results), snap.failures) == ([1, 2], [1], {})
    assert snap.cancelled is True
    assert not [key for key in reads if "/turns/0003/" in key or "/turns/0004/" in key]


def test_snapshot_of_a_fresh_session_is_empty(repo: SessionRepository) -> None:
    repo.create_session(record())
    snap = repo.snapshot("s1")
    assert (snap.requests, snap.results, snap.failures, snap.cancelled) == ({}, {}, {}, False)
    assert snap.last_index == 0


def test_snapshot_reads_turns_past_9999_and_in_numeric_order(repo: SessionRepository) -> None:
    repo.create_session(record())
    for n in (2, 10, 10000):
        repo.add_request("s1", request(n))
    assert sorted(repo.snapshot("s1").requests) == [2, 10, 10000]
    assert repo.snapshot("s1").last_index == 10000


def test_snapshot_ignores_unknown_objects_and_other_sessions(
    repo: SessionRepository, store: MemoryStore
) -> None:
    repo.create_session(record("s1"))
    repo.create_session(record("s10"))
    repo.add_request("s10", request(1))
    repo.cancel("s10")
    store.put("sessions/s1/turns/0001/notes.txt", b"x")
    store.put("sessions/s1/turns/abcd/request.json", b"not json")
    store.put("sessions/s1/extra/thing", b"x")
    snap = repo.snapshot("s1")
    assert (snap.requests, snap.results, snap.failures, snap.cancelled) == ({}, {}, {}, False)


def test_session_ids_lists_every_session_in_key_order(
    repo: SessionRepository, store: MemoryStore
) -> None:
    for sid in ["s2", "a_1", "s10", "B-x"]:
        repo.create_session(record(sid))
    repo.add_request("s2", request(1))
    repo.cancel("zz-no-session-json")
    store.put("blobs/sha256/" + "0" * 64, b"img")
    assert list(repo.session_ids()) == ["B-x", "a_1", "s10", "s2"]


def test_session_ids_of_an_empty_store_is_empty(repo: SessionRepository) -> None:
    assert list(repo.session_ids()) == []


def test_stored_objects_are_json_with_every_field(
    repo: SessionRepository, store: MemoryStore
) -> None:
    repo.add_request("s1", request(1, "p"))
    stored = json.loads(store.get("sessions/s1/turns/0001/request.json"))
    assert stored == {
        "index": 1,
        "prompt": "p",
        "images": [],
        "mask": None,
        "image_size": None,
        "aspect_ratio": None,
        "revision": 1,
        "created_at": "2026-11-27T12:00:00Z",
    }
