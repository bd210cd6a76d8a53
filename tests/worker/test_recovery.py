"""Recovery in seconds: heartbeats keep a running turn's lease; when they stop, the sweep puts
the turn back, counts the dead attempt's call as possibly billed, and the broker's own later
redelivery is absorbed."""

from __future__ import annotations

import random
import time
from pathlib import Path

from shared.coordination import LiveTurn
from shared.keys import turn_lease
from shared.models import SessionState, TurnState
from shared.status import build_status
from tests.worker.conftest import World, answer, jpeg, make_world
from worker.heartbeat import Heartbeat
from worker.recovery import recover_lost
from worker.turn import Outcome, TurnRunner


def died_mid_call(world: World, sid: str, index: int = 1) -> None:
    """What a SIGKILLed worker leaves: a running entry, a lapsed heartbeat and lease."""
    world.coord.set_live(sid, index, LiveTurn(state=TurnState.RUNNING, attempts=1))
    assert world.coord.acquire_lease(turn_lease(sid, index), "dead-worker", 0.01)
    world.coord.beat(sid, index, time.time() - 1)
    time.sleep(0.02)


def status_of(world: World, sid: str):  # type: ignore[no-untyped-def]
    return build_status(world.repo.snapshot(sid), world.coord.live(sid))


def test_a_turn_whose_heartbeat_stopped_shows_retrying_with_the_reason(tmp_path: Path) -> None:
    world = make_world(tmp_path, [])
    sid = world.session(["a room"])
    died_mid_call(world, sid)

    turn = status_of(world, sid).turns[0]

    assert turn.state is TurnState.RETRYING
    assert turn.waiting_reason == "worker_lost"
    assert turn.error is not None and "stopped heartbeating" in turn.error.message


def test_the_sweep_queues_a_dead_workers_turn_and_counts_its_call_possibly_billed(
    tmp_path: Path,
) -> None:
    world = make_world(tmp_path, [])
    sid = world.session(["a room", "sage walls"])
    died_mid_call(world, sid)

    assert recover_lost(world.services, "sweeper", time.time()) == 1

    assert world.enqueuer.calls == [(sid, 1, 2, 0)]
    doc = status_of(world, sid)
    assert doc.turns[0].state is TurnState.RETRYING
    assert doc.turns[0].possibly_billed_usd > 0
    assert doc.possibly_billed_usd == doc.turns[0].possibly_billed_usd
    assert world.coord.lapsed(time.time(), 10) == []
    assert recover_lost(world.services, "sweeper", time.time()) == 0  # once


def test_a_slow_worker_that_still_holds_its_lease_keeps_its_turn(tmp_path: Path) -> None:
    world = make_world(tmp_path, [])
    sid = world.session(["a room"])
    world.coord.set_live(sid, 1, LiveTurn(state=TurnState.RUNNING, attempts=1))
    assert world.coord.acquire_lease(turn_lease(sid, 1), "slow-worker", 30)
    world.coord.beat(sid, 1, time.time() - 1)  # the zset entry lags, the lease does not

    assert recover_lost(world.services, "sweeper", time.time()) == 0
    assert world.enqueuer.calls == []


def test_the_brokers_later_redelivery_of_the_dead_attempt_is_absorbed(tmp_path: Path) -> None:
    world = make_world(tmp_path, [answer(jpeg())])
    sid = world.session(["a room"])
    died_mid_call(world, sid)
    recover_lost(world.services, "sweeper", time.time())

    retried = TurnRunner(world.services, owner="w2", rng=random.Random(1)).run(sid, 1, 2)
    redelivered = TurnRunner(world.services, owner="w3", rng=random.Random(1)).run(sid, 1, 1)

    assert (retried, redelivered) == (Outcome.COMMITTED, Outcome.ALREADY_DONE)
    assert world.gemini.calls == 1
    doc = status_of(world, sid)
    assert doc.state is SessionState.COMPLETED and doc.possibly_billed_usd > 0


def test_the_heartbeat_renews_a_held_lease_and_forgets_it_after(tmp_path: Path) -> None:
    world = make_world(tmp_path, [])
    beat = Heartbeat(world.coord, ttl_s=0.3)
    assert world.coord.acquire_lease(turn_lease("s1", 1), "w1", 0.3)

    with beat.holding("s1", 1, "w1"):
        time.sleep(0.6)  # two ttls: alive only because it was renewed
        assert not world.coord.acquire_lease(turn_lease("s1", 1), "other", 0.3)
        assert world.coord.lapsed(time.time(), 10) == []

    assert world.coord.lapsed(time.time() + 60, 10) == []
