"""The Celery task: a thin shell that validates ids and runs the turn.

Every error inside the turn becomes one action (`worker.actions.action_for`), carried out by the
runner; a bug fails the turn visibly like any other error.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from shared.broker import LANE_FLEX, LANE_STANDARD, TASK_RUN_TURN
from shared.ids import validate_stored_id
from worker.turn import TurnRunner, delivery_owner
from worker.wiring import services_of


@shared_task(  # type: ignore[untyped-decorator]
    name=TASK_RUN_TURN, bind=True, acks_late=True, ignore_result=True
)
def run_turn(
    self: Any, session_id: str, index: int, attempt: int = 1, lane: str = LANE_STANDARD
) -> str:
    """Run turn `index` of `session_id` at the `lane`'s tier; the message carries these ids, the
    attempt and the lane (only when not standard), nothing else."""
    validate_stored_id(session_id)
    if not isinstance(index, int) or index < 1 or not isinstance(attempt, int) or attempt < 1:
        raise ValueError(
            f"run_turn({session_id!r}, {index!r}, attempt={attempt!r}): bad turn index"
        )
    if lane not in (LANE_STANDARD, LANE_FLEX):
        raise ValueError(f"run_turn({session_id!r}, {index!r}): unknown lane {lane!r}")
    owner = delivery_owner(self.request.id)
    runner = TurnRunner(services_of(self.app), owner=owner, lane=lane)
    return runner.run(session_id, index, attempt).value
