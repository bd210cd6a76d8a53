"""Submitting and appending (producer/submission.py) on in-memory services: what is written,
enqueued and refused."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import pytest

from producer import submission
from producer.specs import LoadedSpec
from shared.errors import (
    BrokerUnavailable,
    InvalidSpec,
    StorageUnavailable,
    UnknownSession,
)
from shared.models import Transport
from shared.s3 import MAX_POOL_CONNECTIONS
from shared.services import Services, index_of
from shared.session_spec import SessionSpec, TurnSpec
from shared.storage import MemoryStore
from tests.producer.conftest import (
    RecordingEnqueuer,
    commit_turn,
    make_services,
    png_bytes,
    spec_of,
    store_of,
)


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
        submission.submit_session(
            services, spec_of("b", "c", "d", session_id="taken"), base_dir=tmp_path
        )

    # The other session is untouched: no later turn was written into it, its marker stays.
    assert sorted(store_of(services).list("sessions/taken/")) == [
        "sessions/taken/session.json",
        "sessions/taken/turns/0001/request.json",
    ]
    assert index_of(services).open_ids() == ["taken"]


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


class SlowFirstTurnStore(MemoryStore):
    """Records when each write starts and ends; turn 1's request takes a while."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def _note(self, what: str, key: str) -> None:
        with self._lock:
            self.events.append((what, key))

    def put_if_absent(self, key: str, data: bytes) -> bool:
        self._note("start", key)
        if key.endswith("turns/0001/request.json"):
            time.sleep(0.05)
        try:
            return super().put_if_absent(key, data)
        finally:
            self._note("end", key)

    def put(self, key: str, data: bytes) -> None:
        self._note("start", key)
        super().put(key, data)
        self._note("end", key)


def test_turn_one_claims_the_id_before_any_other_write_and_session_json_comes_last(
    services: Services, tmp_path: Path
) -> None:
    store = SlowFirstTurnStore()
    slow = dataclasses.replace(services, repo=type(services.repo)(store))

    submission.submit_session(slow, spec_of("a", "b", "c", session_id="s"), base_dir=tmp_path)

    first = "sessions/s/turns/0001/request.json"
    assert store.events[:2] == [("start", first), ("end", first)]
    last = "sessions/s/session.json"
    assert store.events[-2:] == [("start", last), ("end", last)]
    middle = {key for _, key in store.events[2:-2]}
    assert middle == {
        "sessions/s/turns/0002/request.json",
        "sessions/s/turns/0003/request.json",
        "index/open/s",
    }
    assert store.events[-4:-2] == [("start", "index/open/s"), ("end", "index/open/s")]


class PeakStore(MemoryStore):
    """Counts the writes in flight at once (each takes 5 ms)."""

    def __init__(self) -> None:
        super().__init__()
        self.now = self.peak = 0
        self._lock = threading.Lock()

    def put_if_absent(self, key: str, data: bytes) -> bool:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(0.005)
        try:
            return super().put_if_absent(key, data)
        finally:
            with self._lock:
                self.now -= 1


def test_a_batch_of_long_sessions_keeps_its_writes_within_the_clients_pool(
    services: Services, tmp_path: Path
) -> None:
    store = PeakStore()
    busy = dataclasses.replace(services, repo=type(services.repo)(store))
    long = spec_of(*[f"edit {n}" for n in range(40)])

    submission.submit_many(busy, [LoadedSpec(long, tmp_path, f"s{n}") for n in range(10)])

    assert 8 < store.peak <= MAX_POOL_CONNECTIONS


def test_short_sessions_are_written_more_at_a_time_within_the_same_pool(
    services: Services, tmp_path: Path
) -> None:
    store = PeakStore()
    busy = dataclasses.replace(services, repo=type(services.repo)(store))
    short = [LoadedSpec(spec_of("one edit"), tmp_path, f"s{n}") for n in range(64)]

    submission.submit_many(busy, short)

    assert submission.sessions_in_flight(short) == MAX_POOL_CONNECTIONS
    assert 16 < store.peak <= MAX_POOL_CONNECTIONS
