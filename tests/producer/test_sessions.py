"""The producer API on in-memory services: what it writes, enqueues and refuses."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest

from producer import sessions, submission
from producer.specs import LoadedSpec
from shared.coordination import MemoryCoordinator
from shared.errors import (
    BrokerUnavailable,
    InvalidSpec,
    InvalidState,
    StorageUnavailable,
    UnknownSession,
)
from shared.models import SessionState, Transport, TurnState
from shared.services import Services
from shared.session_spec import SessionSpec, TurnSpec
from shared.storage import MemoryStore
from tests.producer.conftest import (
    RecordingEnqueuer,
    commit_turn,
    fail_turn,
    jpeg_bytes,
    make_services,
    png_bytes,
    spec_of,
)


def store_of(services: Services) -> MemoryStore:
    store = services.repo.store
    assert isinstance(store, MemoryStore)
    return store


def test_submit_writes_the_session_and_every_request_then_enqueues_turn_one(
    services: Services, enqueuer: RecordingEnqueuer, tmp_path: Path
) -> None:
    sid = submission.submit_session(services, spec_of("a room", "paint it"), base_dir=tmp_path)

    snap = services.repo.snapshot(sid)
    assert snap.record.model == services.settings.model
    assert [r.prompt for r in snap.requests.values()] == ["a room", "paint it"]
    assert enqueuer.calls == [(sid, 1)]
    assert services.coord.tracked_sessions() == [sid]


def test_submit_keeps_the_clients_session_id_and_settings(
    services: Services, tmp_path: Path
) -> None:
    spec = spec_of("a", session_id="kitchen-7", model="gemini-3-pro-image", image_size="2K")

    sid = submission.submit_session(services, spec, base_dir=tmp_path, batch_id="night-1")

    record = services.repo.session(sid)
    assert (sid, record.model, record.image_size, record.batch_id) == (
        "kitchen-7",
        "gemini-3-pro-image",
        "2K",
        "night-1",
    )


def test_the_fleets_default_transport_applies_to_specs_that_name_none(
    services: Services, tmp_path: Path
) -> None:
    fleet = dataclasses.replace(
        services,
        settings=services.settings.model_copy(update={"default_transport": "interactions"}),
    )

    unnamed = submission.submit_session(fleet, spec_of("a"), base_dir=tmp_path)
    named = submission.submit_session(fleet, spec_of("a", transport="replay"), base_dir=tmp_path)
    default = submission.submit_session(services, spec_of("a"), base_dir=tmp_path)

    assert [services.repo.session(s).transport for s in (unnamed, named, default)] == [
        Transport.INTERACTIONS,
        Transport.REPLAY,
        Transport.REPLAY,
    ]


def test_submit_uploads_reference_images_as_blobs(services: Services, tmp_path: Path) -> None:
    (tmp_path / "room.png").write_bytes(png_bytes())
    spec = SessionSpec(turns=[TurnSpec(prompt="stage it", images=["room.png"])])

    sid = submission.submit_session(services, spec, base_dir=tmp_path)

    [ref] = services.repo.request(sid, 1).images  # type: ignore[union-attr]
    assert ref.mime_type == "image/png"
    assert services.blobs.read(ref.sha256) == png_bytes()


@pytest.mark.parametrize(
    "spec",
    [
        spec_of("a", model="gemini-3-pro-image", image_size="512"),
        spec_of("a", "b").model_copy(
            update={"turns": [TurnSpec(prompt="a"), TurnSpec(prompt="b", images=["gone.jpg"])]}
        ),
    ],
    ids=["unsupported-size", "missing-image"],
)
def test_submit_writes_nothing_when_the_spec_is_invalid(
    services: Services, enqueuer: RecordingEnqueuer, tmp_path: Path, spec: object
) -> None:
    with pytest.raises(InvalidSpec):
        submission.submit_session(services, spec, base_dir=tmp_path)  # type: ignore[arg-type]

    assert store_of(services).objects == {}
    assert enqueuer.calls == []


def test_a_batch_with_one_bad_session_writes_none_of_them(
    services: Services, enqueuer: RecordingEnqueuer, tmp_path: Path
) -> None:
    good = LoadedSpec(spec_of("a"), tmp_path, "x:1")
    bad = LoadedSpec(spec_of("b", aspect_ratio="7:3"), tmp_path, "x:2")

    with pytest.raises(InvalidSpec):
        submission.submit_many(services, [good, bad])

    assert store_of(services).objects == {}
    assert enqueuer.calls == []


def test_a_taken_client_session_id_is_refused(services: Services, tmp_path: Path) -> None:
    submission.submit_session(services, spec_of("a", session_id="taken"), base_dir=tmp_path)

    with pytest.raises(InvalidSpec, match="session id taken already exists"):
        submission.submit_session(services, spec_of("b", session_id="taken"), base_dir=tmp_path)


def test_append_to_a_session_whose_last_turn_is_committed_enqueues_the_new_turn(
    services: Services, enqueuer: RecordingEnqueuer, tmp_path: Path
) -> None:
    sid = submission.submit_session(services, spec_of("a room"), base_dir=tmp_path)
    commit_turn(services, sid, 1)

    index = submission.append_turn(services, sid, TurnSpec(prompt="paint it"), tmp_path)

    assert index == 2
    assert enqueuer.calls == [(sid, 1), (sid, 2)]


def test_append_while_the_previous_turn_runs_leaves_the_wake_up_to_the_worker(
    services: Services, enqueuer: RecordingEnqueuer, tmp_path: Path
) -> None:
    sid = submission.submit_session(services, spec_of("a room"), base_dir=tmp_path)

    index = submission.append_turn(services, sid, TurnSpec(prompt="paint it"), tmp_path)

    assert index == 2
    assert enqueuer.calls == [(sid, 1)]
    assert services.repo.request(sid, 2) is not None


def test_concurrent_appends_get_distinct_indexes(services: Services, tmp_path: Path) -> None:
    sid = submission.submit_session(services, spec_of("a room"), base_dir=tmp_path)
    start = threading.Barrier(8)
    indexes: list[int] = []

    def append(n: int) -> None:
        start.wait()
        indexes.append(
            submission.append_turn(services, sid, TurnSpec(prompt=f"edit {n}"), tmp_path)
        )

    threads = [threading.Thread(target=append, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(indexes) == list(range(2, 10))
    prompts = {services.repo.request(sid, n).prompt for n in indexes}  # type: ignore[union-attr]
    assert prompts == {f"edit {n}" for n in range(8)}


def test_append_refuses_a_size_the_sessions_model_does_not_support(
    services: Services, tmp_path: Path
) -> None:
    sid = submission.submit_session(
        services, spec_of("a", model="gemini-3-pro-image"), base_dir=tmp_path
    )

    with pytest.raises(InvalidSpec, match="'512'"):
        submission.append_turn(services, sid, TurnSpec(prompt="b", image_size="512"), tmp_path)

    assert services.repo.request(sid, 2) is None


def test_append_to_an_unknown_session_is_refused(services: Services, tmp_path: Path) -> None:
    with pytest.raises(UnknownSession):
        submission.append_turn(services, "nope", TurnSpec(prompt="b"), tmp_path)


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


class BrokerDown:
    def enqueue_turn(
        self, sid: str, index: int, *, attempt: int = 1, countdown_s: float = 0
    ) -> None:
        raise BrokerUnavailable("cannot queue: Connection refused")


def test_a_broker_failure_after_writing_says_the_turn_is_stored_and_how_to_resume(
    tmp_path: Path,
) -> None:
    services = make_services(tmp_path)
    services = dataclasses.replace(services, enqueuer=BrokerDown())

    with pytest.raises(StorageUnavailable, match="editqueue reconcile") as caught:
        submission.submit_session(services, spec_of("a", session_id="kept"), base_dir=tmp_path)

    assert "kept turn 1 is stored but not queued" in str(caught.value)
    assert services.repo.request("kept", 1) is not None
