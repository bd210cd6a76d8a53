"""Parallel store writes: order kept, the first error raised, each session enqueued once written."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from producer import submission
from producer.parallel import parallel_map
from producer.specs import LoadedSpec
from shared.errors import BrokerUnavailable, StorageUnavailable
from shared.services import Services
from tests.producer.conftest import make_services, spec_of


def test_results_come_back_in_input_order_from_several_threads() -> None:
    seen: set[int] = set()

    def square(n: int) -> int:
        seen.add(threading.get_ident())
        return n * n

    assert parallel_map(square, list(range(200)), threads=8) == [n * n for n in range(200)]
    assert len(seen) > 1


def test_the_first_error_is_raised_and_unstarted_calls_are_dropped() -> None:
    started: list[int] = []

    def fail_on_three(n: int) -> int:
        started.append(n)
        time.sleep(0.001)  # 10,000 calls would take 5 s on two threads
        if n == 3:
            raise ValueError("bad item 3")
        return n

    with pytest.raises(ValueError, match="bad item 3"):
        parallel_map(fail_on_three, list(range(10_000)), threads=2)
    assert len(started) < 5_000


@dataclass
class WrittenFirst:
    """An enqueuer that records how many sessions were stored when the first turn was queued."""

    services: Services | None = None
    stored_at_first_enqueue: int | None = None
    calls: list[tuple[str, int]] = field(default_factory=list)
    complete_at_enqueue: list[bool] = field(default_factory=list)

    def enqueue_turn(
        self, sid: str, index: int, *, attempt: int = 1, countdown_s: float = 0
    ) -> None:
        if self.services is not None:
            repo = self.services.repo
            if self.stored_at_first_enqueue is None:
                self.stored_at_first_enqueue = len(list(repo.session_ids()))
            written = repo.find_session(sid) is not None and repo.request(sid, 2) is not None
            self.complete_at_enqueue.append(written)
        self.calls.append((sid, index))


def test_each_session_is_enqueued_once_it_is_written_not_after_the_batch(tmp_path: Path) -> None:
    enqueuer = WrittenFirst()
    services = make_services(tmp_path, enqueuer)  # type: ignore[arg-type]
    enqueuer.services = services
    items = [LoadedSpec(spec_of("a", "b"), tmp_path, f"s{n}") for n in range(40)]

    sids = submission.submit_many(services, items, batch_id="b1")

    assert sorted(enqueuer.calls) == sorted((sid, 1) for sid in sids)
    # every turn 1 was queued with its own session complete in the store
    assert enqueuer.complete_at_enqueue == [True] * 40
    # and not only after the whole batch (the first of 40 went before the last was written)
    assert enqueuer.stored_at_first_enqueue is not None
    assert enqueuer.stored_at_first_enqueue < 40


class FailsOnFifth:
    """A broker that refuses the fifth enqueue (and, with `also`, more)."""

    def __init__(self, also: tuple[int, ...] = ()) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.failing = {5, *also}

    def enqueue_turn(
        self, sid: str, index: int, *, attempt: int = 1, countdown_s: float = 0
    ) -> None:
        with self.lock:
            self.count += 1
            if self.count in self.failing:
                raise BrokerUnavailable("the broker hung up for this test")


@pytest.mark.parametrize(
    ("also", "said"),
    [((), r"turn 1 is stored but not queued"), ((9,), r"2 of 100 sessions are stored but not")],
)
def test_a_broker_failure_stops_no_write_and_says_what_to_run(
    tmp_path: Path, also: tuple[int, ...], said: str
) -> None:
    services = make_services(tmp_path, FailsOnFifth(also))  # type: ignore[arg-type]
    items = [LoadedSpec(spec_of("a", "b"), tmp_path, f"s{n}") for n in range(100)]

    with pytest.raises(StorageUnavailable, match=said) as raised:
        submission.submit_many(services, items, batch_id="b1")

    assert "editqueue reconcile" in str(raised.value)
    assert len(list(services.repo.session_ids())) == 100  # every session stored: reconcile runs it
