"""The Celery task: a thin shell that validates ids, runs the turn, and never drops a turn."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from celery import shared_task

from shared import runtime
from shared.broker import LANE_FLEX, LANE_STANDARD, TASK_RUN_TURN
from shared.errors import EditQueueError, TransientError
from shared.models import ErrorInfo, FailureRecord, validate_stored_id
from worker.turn import BUSY_RETRY_S, TurnRunner, delivery_owner

log = logging.getLogger("editqueue.tasks")


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
    services = runtime.current()
    runner = TurnRunner(services, owner=delivery_owner(self.request.id), lane=lane)
    try:
        return runner.run(session_id, index, attempt).value
    except TransientError as exc:
        # Storage or Redis hiccup outside the API call: the turn comes back, same attempt.
        log.warning("turn %s/%d: %s; requeued", session_id, index, exc)
        extra: dict[str, Any] = {} if lane == LANE_STANDARD else {"lane": lane}
        services.enqueuer.enqueue_turn(
            session_id, index, attempt=attempt, countdown_s=BUSY_RETRY_S, **extra
        )
        return "requeued"
    except EditQueueError as exc:
        _record_internal_failure(session_id, index, attempt, exc.kind, str(exc))
        return "failed"
    except Exception as exc:
        # A bug must not lose the turn silently: fail it visibly with the reason, then re-raise.
        _record_internal_failure(session_id, index, attempt, "internal", repr(exc)[:300])
        raise


def _record_internal_failure(sid: str, index: int, attempt: int, kind: str, message: str) -> None:
    services = runtime.current()
    request = services.repo.request(sid, index)
    if request is None:
        return
    services.repo.record_failure(
        sid,
        FailureRecord(
            index=index,
            error=ErrorInfo(kind=kind, message=message),
            attempts=attempt,
            request_revision=request.revision,
            failed_at=datetime.now(UTC),
        ),
    )
    services.coord.clear_live(sid, index)
