"""S3 is the truth: find every turn that should be on the queue and is not, and put it there.

Used by `editqueue reconcile`, by the workers' periodic sweep, and after Redis lost its memory.
Idempotent: a turn with a fresh live entry (queued, running, waiting) is left alone.
"""

from __future__ import annotations

import logging

from shared.config import TASK_MARGIN_S, Settings
from shared.coordination import LiveTurn
from shared.dispatch import dispatch
from shared.models import Tier, TurnState
from shared.runtime import Services
from shared.sessions import SessionSnapshot
from shared.status import current_park, turn_state

log = logging.getLogger("editqueue.reconcile")
BUDGET_REASON = "budget"


def _fresh(live: LiveTurn | None, now: float, stale_after_s: float, running_s: float) -> bool:
    if live is None:
        return False
    # A running delivery either finishes or is redelivered within the visibility timeout; a
    # "running" entry older than that belongs to a message that is gone (e.g. a wiped Redis).
    limit = running_s if live.state is TurnState.RUNNING else stale_after_s
    return now - live.updated_at < limit


def due_turns(
    snap: SessionSnapshot,
    live: dict[int, LiveTurn],
    now: float,
    *,
    stale_after_s: float,
    running_stale_s: float = float("inf"),
    include_budget: bool = False,
) -> list[tuple[int, int]]:
    """(index, attempt) of every turn to enqueue now: unqueued-but-due, or parked-and-due."""
    due: list[tuple[int, int]] = []
    for index in sorted(snap.requests):
        state = turn_state(snap, index, None)
        park = current_park(snap, index)
        if park is not None and not snap.cancelled and index not in snap.results:
            budget_release = include_budget and park.reason == BUDGET_REASON
            if park.due_at <= now or budget_release:
                due.append((index, park.attempt))
        elif state is TurnState.QUEUED and not _fresh(
            live.get(index), now, stale_after_s, running_stale_s
        ):
            due.append((index, 1))
    return due


def running_stale_s(settings: Settings, tier: Tier) -> float:
    """How old a "running" entry of this tier's turns may get before its message is gone."""
    if tier is Tier.BATCH:  # a wave may run for hours; the batcher follows it from the store
        return float("inf")
    if tier is Tier.FLEX:
        return settings.flex_visibility_timeout_s + settings.flex_timeout_s + TASK_MARGIN_S
    return settings.visibility_timeout_s + settings.api_timeout_s + TASK_MARGIN_S


def reconcile_session(
    services: Services, sid: str, now: float, *, include_budget: bool = False
) -> int:
    """Rebuild one session's index entries and enqueue what is due; returns how many."""
    snap = services.repo.snapshot(sid)
    services.coord.track_session(sid)
    for index in snap.parked:
        park = current_park(snap, index)
        if park is not None:
            services.coord.index_park(sid, index, park.due_at)
    live = services.coord.live(sid)
    settings = services.settings
    found = due_turns(
        snap,
        live,
        now,
        stale_after_s=settings.reconcile_stale_s,
        running_stale_s=running_stale_s(settings, snap.record.tier),
        include_budget=include_budget,
    )
    for index, attempt in found:
        dispatch(services, sid, index, attempt=attempt, lane=snap.record.tier.value)
        if index in snap.parked:
            services.repo.unpark(sid, index)
            services.coord.drop_park(sid, index)
    return len(found)


def reconcile(services: Services, now: float, *, include_budget: bool = False) -> int:
    """Reconcile every session in the store; returns how many turns were enqueued."""
    total = 0
    for sid in services.repo.session_ids():
        total += reconcile_session(services, sid, now, include_budget=include_budget)
    services.coord.mark_epoch()
    log.info("reconcile: %d turn(s) enqueued", total)
    return total


def sweep_parked(services: Services, now: float, limit: int = 200) -> int:
    """Enqueue parked turns whose time has come (from the index); returns how many."""
    count = 0
    for sid, index in services.coord.due_parks(now, limit):
        snap = services.repo.snapshot(sid)
        park = current_park(snap, index)
        if park is not None and park.due_at <= now and index not in snap.results:
            if not snap.cancelled:
                dispatch(services, sid, index, attempt=park.attempt, lane=snap.record.tier.value)
                count += 1
            services.repo.unpark(sid, index)
        services.coord.drop_park(sid, index)
    return count
