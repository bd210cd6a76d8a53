"""The periodic sweep: parked turns come back when due; a wiped Redis triggers a reconcile."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from shared.coordination import MemoryCoordinator
from shared.errors import RateLimited
from tests.worker.conftest import make_world
from worker.sweeper import Sweeper, sweep_once
from worker.turn import TurnRunner


def test_first_sweep_after_redis_lost_its_memory_reconciles_from_the_store(
    tmp_path: Path,
) -> None:
    world = make_world(tmp_path, [])
    sid = world.session(["a", "b"])

    parked, reconciled = sweep_once(world.services, "w1", time.time())

    assert (parked, reconciled) == (0, 1)
    assert world.enqueuer.calls == [(sid, 1, 1, 0)]
    assert world.coord.has_epoch()


def test_sweeps_within_the_reconcile_interval_do_not_reconcile_again(tmp_path: Path) -> None:
    world = make_world(tmp_path, [])
    world.session(["a"])
    now = time.time()
    sweep_once(world.services, "w1", now)
    world.services = dataclasses.replace(world.services, coord=world.coord)

    assert sweep_once(world.services, "w1", now + 1) == (0, 0)
    assert sweep_once(world.services, "w2", now + 2) == (0, 0)
    assert len(world.enqueuer.calls) == 1


def test_sweep_enqueues_a_parked_turn_when_due_and_only_one_sweeper_runs(
    tmp_path: Path,
) -> None:
    world = make_world(tmp_path, [RateLimited("429", retry_after_s=300.0)])
    sid = world.session(["a"])
    world.coord.mark_epoch()
    TurnRunner(world.services, owner="t").run(sid, 1, 1)
    assert world.coord.acquire_lease("sweep", "other-sweeper", 60)

    assert sweep_once(world.services, "w1", time.time() + 400) == (0, 0)
    world.coord.release_lease("sweep", "other-sweeper")
    # The first sweep also reconciles, which finds the due park itself; one enqueue either way.
    assert sum(sweep_once(world.services, "w1", time.time() + 400)) == 1
    assert world.repo.parked(sid, 1) is None
    assert world.enqueuer.calls[-1] == (sid, 1, 2, 0)


def test_wiped_coordinator_is_detected_by_its_missing_epoch() -> None:
    coord = MemoryCoordinator()
    assert not coord.has_epoch()
    coord.mark_epoch()
    assert coord.has_epoch()


def test_reconcile_resends_a_turn_whose_running_entry_outlived_the_visibility_timeout(
    tmp_path: Path,
) -> None:
    from shared.coordination import LiveTurn
    from shared.models import TurnState
    from shared.reconcile import reconcile

    world = make_world(tmp_path, [])
    sid = world.session(["a"])
    settings = world.services.settings
    now = time.time()
    started = now - settings.visibility_timeout_s - settings.longest_task_s - 1
    world.coord.set_live(sid, 1, LiveTurn(state=TurnState.RUNNING, attempts=1, updated_at=started))

    assert reconcile(world.services, now) == 1
    world.coord.set_live(sid, 1, LiveTurn(state=TurnState.RUNNING, attempts=1, updated_at=now))
    assert reconcile(world.services, now) == 0  # a live running delivery is left alone


def test_a_starting_worker_sweeps_at_once_not_an_interval_later(tmp_path: Path) -> None:
    world = make_world(tmp_path, [])
    sid = world.session(["a"])  # in the store, not queued: as after Redis lost its memory
    sweeper = Sweeper(lambda: world.services, interval_s=3600)

    sweeper.start()
    try:
        deadline = time.monotonic() + 3
        while not world.enqueuer.calls and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        sweeper.stop()
        sweeper.join(timeout=10)

    assert world.enqueuer.calls == [(sid, 1, 1, 0)]
    assert not sweeper.is_alive()


def test_a_sweeper_stopped_before_it_starts_does_nothing(tmp_path: Path) -> None:
    world = make_world(tmp_path, [])
    world.session(["a"])
    sweeper = Sweeper(lambda: world.services, interval_s=3600)

    sweeper.stop()
    sweeper.start()
    sweeper.join(timeout=10)

    assert world.enqueuer.calls == []
    assert not sweeper.is_alive()
