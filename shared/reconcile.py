"""S3 is the truth: find every turn that should be on the queue and is not, and put it there.

Used by `editqueue reconcile`, by the workers' periodic sweep, and after Redis lost its memory.
Idempotent: a turn with a fresh live entry (queued, running, waiting) is left alone.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from shared.broker import dispatch
from shared.config import TASK_MARGIN_S, Settings
from shared.coordination import LiveTurn
from shared.errors import UnknownSession
from shared.models import Tier, TurnState
from shared.services import Services, index_of
from shared.session_index import FINAL_STATES, summary_of
from shared.sessions import SessionSnapshot
from shared.status import build_status, current_park, turn_state
from shared.status_document import SessionStatus

log = logging.getLogger("editqueue.reconcile")
BUDGET_REASON = "budget"
SWEEP_PARALLELISM = 8  # sessions read at once by a reconcile pass (S3 round trips overlap)


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
    services: Services, sid: str, now: float, *, include_budget: bool = False, full: bool = False
) -> int:
    """Rebuild one session's index entries and enqueue what is due; returns how many.

    A session the store says ended leaves the open index (`full`: one still open joins it).
    """
    try:
        snap = services.repo.snapshot(sid)
    except UnknownSession:
        return 0  # an open marker written by a submit still in progress (or one that died)
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
    if not found:
        _index_session(services, snap, live, full)
    return len(found)


def _final(
    services: Services, snap: SessionSnapshot, live: dict[int, LiveTurn]
) -> SessionStatus | None:
    """The session's status if it ended (completed, failed, cancelled), else None."""
    status = build_status(snap, live, services.settings.quality)
    return status if status.state in FINAL_STATES else None


def _index_session(
    services: Services, snap: SessionSnapshot, live: dict[int, LiveTurn], full: bool
) -> None:
    """Close an ended session in the index (then look again: an append or retry may have come
    in between, and it marks the session open only after its own write); `full` also opens."""
    sid = snap.record.session_id
    index = index_of(services)
    status = _final(services, snap, live)
    if status is None:
        if full:
            index.mark_open(sid)
        return
    index.close(summary_of(status, snap.record.tenant))
    if _final(services, services.repo.snapshot(sid), services.coord.live(sid)) is None:
        index.mark_open(sid)


def reconcile(
    services: Services, now: float, *, include_budget: bool = False, full: bool = False
) -> int:
    """Reconcile every open session (`full`: every session in the store, rebuilding the open
    index and the summaries); returns how many turns were enqueued."""
    repo = services.repo
    sids = list(repo.session_ids()) if full else index_of(services).open_ids()
    total = 0
    with ThreadPoolExecutor(SWEEP_PARALLELISM, thread_name_prefix="reconcile") as pool:
        counts = pool.map(
            lambda sid: reconcile_session(
                services, sid, now, include_budget=include_budget, full=full
            ),
            sids,
        )
        total = sum(counts)
    services.coord.mark_epoch()
    log.info("reconcile: %d session(s) read, %d turn(s) enqueued", len(sids), total)
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
