"""Each delivery holds the turn's lease under its own name, even when task ids repeat."""

from __future__ import annotations

import threading
from pathlib import Path

from shared.responses import ApiResponse
from tests.worker.conftest import answer, jpeg, make_world
from worker.turn import Outcome, TurnRunner, delivery_owner


def test_a_duplicate_with_the_same_task_id_is_busy_while_the_first_delivery_calls_the_api(
    tmp_path: Path,
) -> None:
    # Duplicates of one turn carry its deterministic task id (a BUSY requeue, a chain sent by
    # both a winner and a 412 loser); a lease owned by the task id would let both pay at once.
    in_call, release = threading.Event(), threading.Event()

    def slow_answer(model: str, body: bytes) -> ApiResponse:
        in_call.set()
        assert release.wait(10)
        return answer(jpeg())

    world = make_world(tmp_path, [slow_answer, answer(jpeg())])
    sid = world.session(["a"])
    task_id = f"{sid}:0001:1"  # what the broker's deterministic task id gives both deliveries
    outcomes: list[Outcome] = []

    def deliver() -> None:
        outcomes.append(TurnRunner(world.services, delivery_owner(task_id)).run(sid, 1, 1))

    first = threading.Thread(target=deliver)
    first.start()
    assert in_call.wait(10)
    second = TurnRunner(world.services, delivery_owner(task_id)).run(sid, 1, 1)
    release.set()
    first.join(10)

    assert (second, outcomes) == (Outcome.BUSY, [Outcome.COMMITTED])
    assert world.gemini.calls == 1
    assert delivery_owner(task_id) != delivery_owner(task_id)
