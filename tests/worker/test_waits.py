"""Waits that outlast the broker's lease park the turn; the gate and budgets hold turns back."""

from __future__ import annotations

import dataclasses
import random
import time
from datetime import datetime
from pathlib import Path

from shared.errors import RateLimited, ServerError
from shared.events import MemorySink
from shared.models import TurnState
from shared.reconcile import reconcile, sweep_parked
from shared.session_records import BatchRecord
from shared.status import build_status
from tests.worker.conftest import NOW, answer, jpeg, make_world
from worker.actions import QUOTA_TZ, next_quota_reset
from worker.gate import MemoryGate
from worker.turn import Outcome, TurnRunner


def run(world, sid: str, index: int, attempt: int = 1) -> Outcome:  # type: ignore[no-untyped-def]
    return TurnRunner(world.services, owner=f"o{attempt}", rng=random.Random(2)).run(
        sid, index, attempt
    )


def test_retry_delay_longer_than_the_broker_may_hold_parks_the_turn(tmp_path: Path) -> None:
    world = make_world(tmp_path, [RateLimited("429", retry_after_s=600.0)])
    sid = world.session(["a"])

    outcome = run(world, sid, 1)

    assert outcome is Outcome.PARKED
    assert world.enqueuer.calls == []  # nothing sits in the broker for 10 minutes
    park = world.repo.parked(sid, 1)
    assert park is not None and park.reason == "retry_delay" and park.attempt == 2
    assert park.due_at >= time.time() + 599
    status = build_status(world.repo.snapshot(sid), world.coord.live(sid))
    turn = status.turns[0]
    assert (turn.state, turn.waiting_reason) == (TurnState.WAITING, "retry_delay")
    assert turn.error is not None and turn.error.kind == "rate_limited"


def test_sweep_enqueues_a_parked_turn_only_once_it_is_due(tmp_path: Path) -> None:
    world = make_world(tmp_path, [RateLimited("429", retry_after_s=600.0)])
    sid = world.session(["a"])
    run(world, sid, 1)

    assert sweep_parked(world.services, time.time()) == 0
    assert sweep_parked(world.services, time.time() + 601) == 1

    assert world.enqueuer.calls == [(sid, 1, 2, 0)]
    assert world.repo.parked(sid, 1) is None


def test_daily_quota_parks_until_midnight_pacific(tmp_path: Path) -> None:
    world = make_world(tmp_path, [RateLimited("429 per day", retry_after_s=30.0, daily=True)])
    sid = world.session(["a"])
    assert run(world, sid, 1) is Outcome.PARKED
    park = world.repo.parked(sid, 1)
    assert park is not None and park.reason == "daily_quota"
    due = datetime.fromtimestamp(park.due_at, QUOTA_TZ)
    assert (due.hour, due.minute) == (0, 0)


def test_next_quota_reset_is_within_a_day() -> None:
    now = time.time()
    assert now < next_quota_reset(now) <= now + 25 * 3600


def test_outage_past_the_attempt_limit_parks_then_fails_after_the_park_limit(
    tmp_path: Path,
) -> None:
    world = make_world(tmp_path, [ServerError("503", status=503)] * 2, max_attempts=2, max_parks=1)
    sid = world.session(["a"])
    assert run(world, sid, 1, attempt=2) is Outcome.PARKED
    assert run(world, sid, 1, attempt=3) is Outcome.FAILED
    failure = world.repo.failure(sid, 1)
    assert failure is not None and failure.error.status == 503


def test_gate_refusal_requeues_without_calling_or_counting_an_attempt(tmp_path: Path) -> None:
    world = make_world(tmp_path, [answer(jpeg())])
    gate = MemoryGate("1/minute", None)
    world.services = dataclasses.replace(world.services, gate=gate)
    assert gate.admit("someone-else", 30) is None  # the window's only token is taken
    sid = world.session(["a"])

    outcome = run(world, sid, 1)

    assert outcome is Outcome.THROTTLED
    assert world.gemini.calls == 0
    (_, _, attempt, countdown) = world.enqueuer.calls[0]
    assert attempt == 1 and 0 < countdown <= world.services.settings.max_countdown_s
    assert world.coord.live(sid)[1].reason == "rate_limit"


def test_in_flight_cap_refuses_a_second_concurrent_call(tmp_path: Path) -> None:
    gate = MemoryGate(None, 1)
    assert gate.admit("a", 30) is None
    assert gate.admit("b", 30) is not None
    gate.release("a")
    assert gate.admit("b", 30) is None


def test_batch_budget_parks_turns_that_would_pass_it_and_never_overspends(
    tmp_path: Path,
) -> None:
    world = make_world(tmp_path, [answer(jpeg((i, 0, 0))) for i in range(5)])
    sid = world.session(["a", "b", "c"])
    record = world.repo.session(sid)
    world.store.put(  # label the session with a batch whose budget covers two 2K turns
        f"sessions/{sid}/session.json",
        record.model_copy(update={"batch_id": "b1"}).model_dump_json().encode(),
    )
    world.repo.create_batch(
        BatchRecord(batch_id="b1", session_ids=[sid], budget_usd=0.25, created_at=NOW)
    )

    assert run(world, sid, 1) is Outcome.COMMITTED
    assert run(world, sid, 2) is Outcome.COMMITTED
    assert run(world, sid, 3) is Outcome.PARKED

    spent = sum(r.cost_usd for r in world.repo.snapshot(sid).results.values())
    assert spent <= 0.25 and world.gemini.calls == 2
    park = world.repo.parked(sid, 3)
    assert park is not None and park.reason == "budget"

    raised = world.repo.batch("b1").model_copy(update={"budget_usd": 1.0})
    world.repo.save_batch(raised)
    assert reconcile(world.services, time.time(), include_budget=True) == 1
    assert run(world, sid, 3) is Outcome.COMMITTED


def test_parks_are_counted_across_the_sweep_so_max_parks_ends_an_outage_with_failure_events(
    tmp_path: Path,
) -> None:
    """The sweep deletes `parked.json` when it re-enqueues; the count lives in `parks.json`."""
    world = make_world(tmp_path, [ServerError("503", status=503)] * 5, max_attempts=1, max_parks=2)
    sink = MemorySink()
    world.services = dataclasses.replace(world.services, events=sink)
    sid = world.session(["a"])
    outcomes = []
    for attempt in range(1, 4):
        outcomes.append(run(world, sid, 1, attempt=attempt))
        sweep_parked(world.services, time.time() + 10_000)  # the real sweep, in between

    assert outcomes == [Outcome.PARKED, Outcome.PARKED, Outcome.FAILED]
    failure = world.repo.failure(sid, 1)
    assert failure is not None and failure.error.status == 503
    kinds = [event.kind.value for event in sink.events]
    assert kinds == ["turn.failed", "session.failed"]
