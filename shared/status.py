"""The status document: a pure merge of what the store says (truth) and the live index (hints)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from shared.coordination import LiveTurn
from shared.models import SessionState, TurnState
from shared.sessions import SessionSnapshot
from shared.status_document import SessionStatus, TurnStatus
from shared.turn_records import AttemptRecord, ErrorInfo, ParkRecord
from shared.verdicts import QualityRow, QualityThresholds, assess, named_colour

DEFAULT_THRESHOLDS = QualityThresholds()
WORKER_LOST = "worker_lost"


def _current_failure(snap: SessionSnapshot, index: int) -> bool:
    failure = snap.failures.get(index)
    request = snap.requests.get(index)
    return bool(failure and request and failure.request_revision == request.revision)


def current_park(snap: SessionSnapshot, index: int) -> ParkRecord | None:
    """Turn n's park record if it belongs to the turn's current request revision."""
    park = snap.parked.get(index)
    request = snap.requests.get(index)
    if park and request and park.request_revision == request.revision:
        return park
    return None


def lost(live: LiveTurn, now: float | None = None) -> bool:
    """A running turn whose heartbeat stopped (its worker died or stalled)."""
    until = live.lease_until
    return live.state is TurnState.RUNNING and until is not None and until < (now or time.time())


def lost_error(live: LiveTurn) -> ErrorInfo:
    """Why a turn is retrying after its worker stopped."""
    # A broker redelivery that found the lease still held may have rewritten the entry without
    # the lease's end (seen in tests/integration/test_faults.py): then say no time, not 00:00:00.
    when = ""
    if live.lease_until:
        when = f" ({datetime.fromtimestamp(live.lease_until, UTC).strftime('%H:%M:%S')} UTC)"
    return ErrorInfo(
        kind=WORKER_LOST,
        status=None,
        message=f"the worker running attempt {max(1, live.attempts)} stopped heartbeating{when}; "
        "the sweep puts the turn back",
    )


def turn_state(snap: SessionSnapshot, index: int, live: LiveTurn | None) -> TurnState:
    """One turn's state: committed and failed come from the store, the rest from the live index."""
    if index in snap.results:
        return TurnState.SUCCEEDED
    if _current_failure(snap, index):
        return TurnState.FAILED
    if snap.cancelled:
        return TurnState.CANCELLED
    if current_park(snap, index) is not None:
        return TurnState.WAITING
    if live is not None and (lost(live) or live.reason == WORKER_LOST):
        return TurnState.RETRYING
    if live is not None:
        return live.state
    predecessor_done = index == 1 or (index - 1) in snap.results
    return TurnState.QUEUED if predecessor_done else TurnState.WAITING


def quality_row(
    snap: SessionSnapshot, index: int, thresholds: QualityThresholds = DEFAULT_THRESHOLDS
) -> QualityRow | None:
    """Turn n's verdicts against turn n-1 from its stored numbers, or None."""
    metrics, request = snap.metrics_of(index), snap.requests.get(index)
    if metrics is None or request is None:
        return None  # not committed, or turn n+1 is still measuring it
    colour = named_colour(request.prompt)
    return assess(metrics, colour[0] if colour else None, trends(snap, index), thresholds)


TRENDS = {"detail_since_first": "sharpness_ratio", "noise_since_first": "noise_ratio"}


def trends(snap: SessionSnapshot, index: int) -> dict[str, float]:
    """Products of turns 2..n's detail and noise ratios (only when every turn has them)."""
    found: dict[str, float] = {}
    for name, ratio in TRENDS.items():
        product = 1.0
        for n in range(2, index + 1):
            metrics = snap.metrics_of(n)
            if metrics is None or ratio not in metrics:
                break
            product *= metrics[ratio]
        else:
            found[name] = product
    return found


def attempt_history(snap: SessionSnapshot, index: int) -> list[AttemptRecord]:
    """Turn n's API attempts for its current request, in order, the committed one last."""
    request = snap.requests[index]
    result = snap.results.get(index)
    revision = result.request_revision if result else request.revision
    records = {r.attempt: r for r in snap.attempts.get(index, []) if r.request_revision == revision}
    if result is not None:
        records[result.attempt] = AttemptRecord(
            index=index,
            attempt=result.attempt,
            request_revision=revision,
            outcome="committed",
            latency_s=result.latency_s,
            ended_at=result.committed_at,
        )
    return [records[n] for n in sorted(records)]


def possibly_billed(snap: SessionSnapshot, index: int) -> float:
    """What calls of turn n's lost attempts may have cost (an upper bound)."""
    return round(sum(lost.possibly_billed_usd for lost in snap.lost.get(index, [])), 6)


def turn_status(
    snap: SessionSnapshot,
    index: int,
    live: LiveTurn | None,
    thresholds: QualityThresholds = DEFAULT_THRESHOLDS,
) -> TurnStatus:
    """The status document's entry for turn n."""
    status = _turn_status(snap, index, live, thresholds)
    history = attempt_history(snap, index)
    return status.model_copy(update={"attempt_history": history}) if history else status


def _turn_status(
    snap: SessionSnapshot, index: int, live: LiveTurn | None, thresholds: QualityThresholds
) -> TurnStatus:
    state = turn_state(snap, index, live)
    request = snap.requests[index]
    result = snap.results.get(index)
    if result is not None:
        return TurnStatus(
            index=index,
            state=state,
            attempts=result.attempt,
            finish_reason=result.finish_reason,
            image=result.image,
            usage=result.usage,
            latency_s=result.latency_s,
            cost_usd=result.cost_usd,
            prompt=request.prompt,
            metrics=snap.metrics_of(index) or {},
            tier=result.tier,
            transport=result.transport,
            upload_bytes=result.upload_bytes,
            quality=quality_row(snap, index, thresholds),
            possibly_billed_usd=possibly_billed(snap, index),
        )
    failure = snap.failures.get(index) if state is TurnState.FAILED else None
    park = current_park(snap, index) if state is TurnState.WAITING else None
    if failure is not None:
        return TurnStatus(
            index=index,
            state=state,
            attempts=failure.attempts,
            error=failure.error,
            prompt=request.prompt,
            possibly_billed_usd=possibly_billed(snap, index),
        )
    if park is not None:
        return TurnStatus(
            index=index,
            state=state,
            attempts=park.attempt - 1,
            error=park.error,
            prompt=request.prompt,
            waiting_reason=park.reason,
            due_at=park.due_at,
        )
    error = live.error if live else None
    if live is not None and lost(live):
        error = lost_error(live)
    shows_reason = state in (TurnState.WAITING, TurnState.RETRYING)
    return TurnStatus(
        index=index,
        state=state,
        attempts=live.attempts if live else 0,
        error=error,
        prompt=request.prompt,
        waiting_reason=(live.reason or WORKER_LOST) if live and shows_reason else None,
        due_at=live.due_at if live else None,
        possibly_billed_usd=possibly_billed(snap, index),
    )


def session_state(turns: list[TurnStatus], cancelled: bool) -> SessionState:
    """The whole session's state from its turns."""
    states = {t.state for t in turns}
    if turns and states == {TurnState.SUCCEEDED}:
        return SessionState.COMPLETED
    if TurnState.FAILED in states:
        return SessionState.FAILED
    if cancelled:
        return SessionState.CANCELLED
    if states & {TurnState.RUNNING, TurnState.SUCCEEDED}:
        return SessionState.RUNNING
    return SessionState.QUEUED


def build_status(
    snap: SessionSnapshot,
    live: dict[int, LiveTurn],
    thresholds: QualityThresholds = DEFAULT_THRESHOLDS,
) -> SessionStatus:
    """The status document for one session (quality verdicts judged by `thresholds`)."""
    turns = [turn_status(snap, n, live.get(n), thresholds) for n in sorted(snap.requests)]
    return SessionStatus(
        session_id=snap.record.session_id,
        state=session_state(turns, snap.cancelled),
        model=snap.record.model,
        cost_usd=round(sum(t.cost_usd for t in turns), 6),
        turns=turns,
        tier=snap.record.tier,
        transport=snap.record.transport,
        possibly_billed_usd=round(sum(possibly_billed(snap, n) for n in snap.requests), 6),
    )
