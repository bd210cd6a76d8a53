"""Putting a turn on the queue: mark it queued in the live index, then send its ids."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from shared.broker import LANE_BATCH, LANE_STANDARD
from shared.coordination import LiveTurn
from shared.errors import EditQueueError
from shared.models import ErrorInfo, TurnState
from shared.services import Services


def dispatch(
    services: Services,
    sid: str,
    index: int,
    *,
    attempt: int = 1,
    countdown_s: float = 0.0,
    error: ErrorInfo | None = None,
    reason: str | None = None,
    lane: str = LANE_STANDARD,
) -> None:
    """Queue `run_turn(sid, index)` on its lane; the live entry lets reconcile tell queued from
    lost. Only a non-standard lane is named to the enqueuer. A batch-tier turn is not sent to
    the broker: it is marked due for the batcher's next wave."""
    now = time.time()
    if lane == LANE_BATCH:
        waiting = LiveTurn(
            state=TurnState.QUEUED,
            attempts=attempt - 1,
            error=error,
            reason="batch",
            updated_at=now,
        )
        services.coord.set_live(sid, index, waiting)
        services.coord.mark_batch_due(sid, index, attempt, now + countdown_s)
        return
    live = LiveTurn(
        state=TurnState.QUEUED,
        attempts=attempt - 1,
        error=error,
        reason=reason,
        due_at=now + countdown_s if countdown_s else None,
        updated_at=now,
    )
    services.coord.set_live(sid, index, live)
    try:
        extra: dict[str, Any] = {} if lane == LANE_STANDARD else {"lane": lane}
        services.enqueuer.enqueue_turn(
            sid, index, attempt=attempt, countdown_s=countdown_s, **extra
        )
    except EditQueueError:
        # Nothing was sent: a fresh "queued" entry would make reconcile skip the turn for
        # reconcile_stale_s, so the advised `editqueue reconcile` could not bring it back.
        with contextlib.suppress(EditQueueError):
            services.coord.clear_live(sid, index)
        raise
