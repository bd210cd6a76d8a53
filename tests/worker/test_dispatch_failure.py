"""A turn whose message could not be sent must not look queued: reconcile and redeliveries
send it again (a stale "queued" entry would hide it from both for `reconcile_stale_s`).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from shared.broker import dispatch
from shared.errors import BrokerUnavailable
from shared.reconcile import reconcile
from tests.worker.conftest import RecordingEnqueuer, answer, jpeg, make_world
from worker.actions import BUSY_RETRY_S
from worker.turn import Outcome, TurnRunner


@dataclasses.dataclass
class FlakyEnqueuer(RecordingEnqueuer):
    """Refuses the next `failures` sends the way a broker that just restarted does."""

    failures: int = 0

    def enqueue_turn(
        self, sid: str, index: int, *, attempt: int = 1, countdown_s: float = 0
    ) -> None:
        if self.failures:
            self.failures -= 1
            raise BrokerUnavailable(f"cannot queue turn {index} of {sid}: connection refused")
        super().enqueue_turn(sid, index, attempt=attempt, countdown_s=countdown_s)


def test_a_send_refused_by_the_broker_leaves_no_queued_entry_and_reconcile_sends_it(
    tmp_path: Path,
) -> None:
    world = make_world(tmp_path, [])
    flaky = FlakyEnqueuer(failures=1)
    services = dataclasses.replace(world.services, enqueuer=flaky)
    sid = world.session(["a"])

    with pytest.raises(BrokerUnavailable):
        dispatch(services, sid, 1)

    assert world.coord.live(sid) == {}
    assert reconcile(services, time.time()) == 1
    assert flaky.calls == [(sid, 1, 1, 0)]


def test_a_chain_the_broker_refused_is_sent_by_the_redelivery_of_the_committed_turn(
    tmp_path: Path,
) -> None:
    world = make_world(tmp_path, [answer(jpeg())])
    flaky = FlakyEnqueuer(failures=1)
    services = dataclasses.replace(world.services, enqueuer=flaky)
    sid = world.session(["a", "b"])
    runner = TurnRunner(services, owner="t")

    # committed, then chaining turn 2 failed: the same attempt of turn 1 comes back shortly
    assert runner.run(sid, 1, 1) is Outcome.REQUEUED
    outcome = runner.run(sid, 1, 1)  # that requeue (or a redelivery)

    assert world.repo.is_committed(sid, 1)
    assert outcome is Outcome.ALREADY_DONE
    assert flaky.calls == [(sid, 1, 1, BUSY_RETRY_S), (sid, 2, 1, 0)]
