"""Turns whose worker died: the sweep sees the lapsed heartbeat and puts them back in seconds.

A running turn's lease is renewed by its worker's heartbeat (worker/heartbeat.py). When the
lease lapses, the sweeper takes it (so a slow but alive worker that renews it first keeps its
turn), records the dead attempt's call as possibly billed, and queues the next attempt. The
broker redelivers the dead worker's message only after its visibility timeout; by then the turn
is committed or leased, and that delivery is absorbed as a duplicate.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from shared.broker import LANE_STANDARD, dispatch
from shared.coordination import LiveTurn
from shared.keys import turn_lease
from shared.models import TurnState
from shared.services import Services
from shared.status import WORKER_LOST, lost_error, turn_state
from shared.turn_records import LostCall
from worker.spend import call_price

log = logging.getLogger("editqueue.recovery")
LOST_BATCH = 100


def recover_lost(services: Services, owner: str, now: float) -> int:
    """Queue again every turn whose heartbeat lapsed before `now`; returns how many."""
    coord = services.coord
    count = 0
    for sid, index in coord.lapsed(now, LOST_BATCH):
        key = turn_lease(sid, index)
        if not coord.acquire_lease(key, owner, services.settings.lease_ttl_s):
            continue  # its worker renewed the lease after all: alive, only slow
        try:
            count += requeue_lost(services, sid, index)
        finally:
            coord.release_lease(key, owner)
    return count


def requeue_lost(services: Services, sid: str, index: int) -> int:
    """Turn n's worker is gone: count its call as possibly billed, queue the next attempt."""
    coord = services.coord
    live = coord.live(sid).get(index) or LiveTurn(state=TurnState.RUNNING, attempts=1)
    coord.drop_running(sid, index)
    snap = services.repo.snapshot(sid, through=index)
    if index not in snap.requests or turn_state(snap, index, None) is not TurnState.QUEUED:
        return 0  # committed, failed, cancelled or parked meanwhile: nothing to put back
    attempt = max(1, live.attempts)
    price = call_price(snap, index, services.settings.price_overrides, LANE_STANDARD)
    lost = LostCall(index=index, attempt=attempt, possibly_billed_usd=price, lost_at=_now())
    services.repo.record_lost_call(sid, lost)
    error = lost_error(live)
    dispatch(
        services,
        sid,
        index,
        attempt=attempt + 1,
        error=error,
        reason=WORKER_LOST,
        lane=snap.record.tier.value,
    )
    log.warning("turn %s/%d: %s; attempt %d queued", sid, index, error.message, attempt + 1)
    return 1


def _now() -> datetime:
    return datetime.now(UTC)
