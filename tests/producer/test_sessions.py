"""Retry, cancel, fork, reconcile, status and export (producer/sessions.py) on in-memory
services: what they write, enqueue and refuse."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from producer import sessions, submission
from shared.coordination import MemoryCoordinator
from shared.errors import (
    InvalidSpec,
    InvalidState,
    SessionExists,
    UnknownSession,
)
from shared.models import SessionState, TurnState
from shared.services import Services
from tests.producer.conftest import (
    RecordingEnqueuer,
    commit_turn,
    fail_turn,
    jpeg_bytes,
    spec_of,
    store_of,
)


def test_retry_rewrites_the_failed_turn_with_a_new_revision_and_enqueues_it(
    services: Services, enqueuer: RecordingEnqueuer, tmp_path: Path
) -> None:
    sid = submission.submit_session(services, spec_of("a", "b", "c"), base_dir=tmp_path)
    commit_turn(services, sid, 1)
    fail_turn(services, sid, 2)

    index = sessions.retry_turn(services, sid, prompt="b, reworded")

    request = services.repo.request(sid, 2)
    assert index == 2
    assert request is not None and (request.revision, request.prompt) == (2, "b, reworded")
    assert services.repo.failure(sid, 2) is None
    assert enqueuer.calls[-1] == (sid, 2)
    assert sessions.session_status(services, sid).turns[1].state is TurnState.QUEUED


def test_retry_without_a_prompt_keeps_the_wording(services: Services, tmp_path: Path) -> None:
    sid = submission.submit_session(services, spec_of("a"), base_dir=tmp_path)
    fail_turn(services, sid, 1)

    sessions.retry_turn(services, sid, index=1)

    request = services.repo.request(sid, 1)
    assert request is not None and (request.revision, request.prompt) == (2, "a")


def test_retry_refuses_a_turn_that_succeeded(services: Services, tmp_path: Path) -> None:
    sid = submission.submit_session(services, spec_of("a", "b"), base_dir=tmp_path)
    commit_turn(services, sid, 1)
    fail_turn(services, sid, 2)

    with pytest.raises(InvalidState, match="succeeded"):
        sessions.retry_turn(services, sid, index=1)


def test_retry_refuses_a_session_where_nothing_failed(
    services: Services, enqueuer: RecordingEnqueuer, tmp_path: Path
) -> None:
    sid = submission.submit_session(services, spec_of("a"), base_dir=tmp_path)

    with pytest.raises(InvalidState, match="no failed turn"):
        sessions.retry_turn(services, sid)

    assert enqueuer.calls == [(sid, 1)]


def test_cancel_marks_the_session_and_its_open_turns_cancelled(
    services: Services, tmp_path: Path
) -> None:
    sid = submission.submit_session(services, spec_of("a", "b"), base_dir=tmp_path)
    commit_turn(services, sid, 1)

    sessions.cancel(services, sid)

    status = sessions.session_status(services, sid)
    assert status.state is SessionState.CANCELLED
    assert [t.state for t in status.turns] == [TurnState.SUCCEEDED, TurnState.CANCELLED]


def test_fork_copies_turns_one_to_at_and_shares_their_blobs(
    services: Services, tmp_path: Path
) -> None:
    sid = submission.submit_session(services, spec_of("a", "b", "c"), base_dir=tmp_path)
    results = [commit_turn(services, sid, n) for n in (1, 2, 3)]
    blobs_before = [k for k in store_of(services).objects if k.startswith("blobs/")]

    new_sid = sessions.fork(services, sid, 2, new_session_id="branch")

    snap = services.repo.snapshot(new_sid)
    assert new_sid == "branch" and snap.record.forked_from == sid
    assert sorted(snap.requests) == [1, 2] and sorted(snap.results) == [1, 2]
    assert [snap.results[n] for n in (1, 2)] == results[:2]
    assert [k for k in store_of(services).objects if k.startswith("blobs/")] == blobs_before
    assert sessions.session_status(services, new_sid).state is SessionState.COMPLETED


def test_fork_to_an_id_a_submit_is_still_writing_is_refused_and_writes_into_it_nothing(
    services: Services, tmp_path: Path
) -> None:
    sid = submission.submit_session(services, spec_of("a", "b"), base_dir=tmp_path)
    commit_turn(services, sid, 1)
    under_way = services.repo.snapshot(sid).requests[1].model_copy(update={"prompt": "theirs"})
    services.repo.add_request("branch", under_way)  # a submit's claim; no session.json yet

    with pytest.raises(SessionExists, match="branch already exists"):
        sessions.fork(services, sid, 1, new_session_id="branch")

    assert sorted(store_of(services).list("sessions/branch/")) == [
        "sessions/branch/turns/0001/request.json"
    ]
    assert services.repo.request("branch", 1) == under_way


@pytest.mark.parametrize(
    ("at", "error", "words"),
    [
        (0, InvalidSpec, "pick 1..2"),
        (4, InvalidSpec, "pick 1..2"),
        (3, InvalidState, "not committed yet"),
    ],
)
def test_fork_past_the_last_committed_turn_is_refused(
    services: Services, tmp_path: Path, at: int, error: type[Exception], words: str
) -> None:
    sid = submission.submit_session(services, spec_of("a", "b", "c"), base_dir=tmp_path)
    commit_turn(services, sid, 1)
    commit_turn(services, sid, 2)

    with pytest.raises(error) as refused:
        sessions.fork(services, sid, at)
    assert words in str(refused.value) and "pick 1..2" in str(refused.value)


def test_reconcile_enqueues_exactly_the_due_turns(
    services: Services, enqueuer: RecordingEnqueuer, tmp_path: Path
) -> None:
    fresh = submission.submit_session(services, spec_of("a", "b"), base_dir=tmp_path)
    midway = submission.submit_session(services, spec_of("a", "b", "c"), base_dir=tmp_path)
    commit_turn(services, midway, 1)
    failed = submission.submit_session(services, spec_of("a", "b"), base_dir=tmp_path)
    commit_turn(services, failed, 1)
    fail_turn(services, failed, 2)
    done = submission.submit_session(services, spec_of("a"), base_dir=tmp_path)
    commit_turn(services, done, 1)
    cancelled = submission.submit_session(services, spec_of("a"), base_dir=tmp_path)
    sessions.cancel(services, cancelled)
    enqueuer.calls.clear()
    services = dataclasses.replace(services, coord=MemoryCoordinator())  # Redis lost its memory

    count = sessions.reconcile(services)

    assert count == 2
    assert sorted(enqueuer.calls) == sorted([(fresh, 1), (midway, 2)])


def test_reconcile_leaves_turns_that_are_already_queued_alone(
    services: Services, enqueuer: RecordingEnqueuer, tmp_path: Path
) -> None:
    submission.submit_session(services, spec_of("a", "b"), base_dir=tmp_path)
    enqueuer.calls.clear()
    assert sessions.reconcile(services) == 0
    assert enqueuer.calls == []


def test_reconcile_is_idempotent(
    services: Services, enqueuer: RecordingEnqueuer, tmp_path: Path
) -> None:
    sid = submission.submit_session(services, spec_of("a", "b"), base_dir=tmp_path)
    commit_turn(services, sid, 1)
    enqueuer.calls.clear()
    before = dict(store_of(services).objects)

    first, second = sessions.reconcile(services), sessions.reconcile(services)

    assert (first, second) == (1, 0)
    assert enqueuer.calls == [(sid, 2)]
    assert store_of(services).objects == before


def test_status_of_an_unknown_session_is_refused(services: Services) -> None:
    with pytest.raises(UnknownSession):
        sessions.session_status(services, "nope")


def test_list_sessions_shows_every_stored_session(services: Services, tmp_path: Path) -> None:
    sids = {submission.submit_session(services, spec_of("a"), base_dir=tmp_path) for _ in range(3)}

    assert {s.session_id for s in sessions.list_sessions(services)} == sids


def test_export_writes_the_stored_image_bytes(services: Services, tmp_path: Path) -> None:
    sid = submission.submit_session(services, spec_of("a"), base_dir=tmp_path)
    data = jpeg_bytes(colour=(1, 2, 3))
    commit_turn(services, sid, 1, data)

    sessions.export(services, sid, tmp_path / "out")

    assert (tmp_path / "out" / "turn_01.jpg").read_bytes() == data
