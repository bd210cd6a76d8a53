"""What one delivery of `run_turn` did, for the operator: a log line, metrics, attempt records.

The turn runner calls a few hooks (`loaded`, `call`, `billed`, `committed`, `finish`); this
module turns them into one log line per attempt, the `editqueue_*` Prometheus families, the
GenAI span and metrics, and, for an API attempt that did not commit, a stored attempt record,
so a timed-out call's latency stays in the turn's `attempt_history`. A turn's quality numbers and
verdicts are counted once: with the result that carries them, or when `quality.json` is created
(`quality_kept`). Nothing here may fail a turn.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared import metrics, tracing
from shared.broker import LANE_STANDARD
from shared.errors import EditQueueError
from shared.history import effective_size
from shared.redaction import redact
from shared.responses import ApiResponse
from shared.sessions import SessionRepository, SessionSnapshot
from shared.status import quality_row
from shared.turn_records import AttemptRecord, ErrorInfo, TurnResult
from shared.verdicts import AXES, QualityThresholds

log = logging.getLogger("editqueue.turn")

# Outcome values as the `editqueue_turns_total{outcome}` label (the names).
OUTCOME_LABELS = {"retry": "retried"}
WARN_OUTCOMES = frozenset({"retry", "parked", "failed", "fallback"})
STORED_OUTCOMES = WARN_OUTCOMES  # API attempts that end without a commit keep a record


def _iso(epoch_s: float | None) -> str | None:
    return None if epoch_s is None else datetime.fromtimestamp(epoch_s, UTC).isoformat()


def ready_at(snap: SessionSnapshot, index: int) -> datetime:
    """When turn n could first run: its request written and turn n-1 committed."""
    created = snap.requests[index].created_at
    previous = snap.results.get(index - 1)
    return max(created, previous.committed_at) if previous else created


def record_quality(snap: SessionSnapshot, index: int, thresholds: QualityThresholds) -> None:
    """Count turn n's quality numbers (`editqueue_turn_quality`) and verdicts
    (`editqueue_quality_verdicts_total`) as `snap` holds them; nothing for a turn without
    transition numbers ({}: a failed measurement)."""
    fam = metrics.families()
    for signal, value in metrics.quality_signals(snap.metrics_of(index) or {}):
        fam.quality.labels(signal).observe(value)
    row = quality_row(snap, index, thresholds)
    for axis in AXES if row is not None else ():
        fam.verdicts.labels(axis, getattr(row, axis).verdict or "none").inc()


def quality_kept(
    snap: SessionSnapshot, index: int, numbers: dict[str, float], thresholds: QualityThresholds
) -> None:
    """Turn n's `numbers` were just written to `turns/n/quality.json` (this call created it, so
    once fleet-wide): count them as a committing result's are counted. Never raises."""
    try:
        kept = dataclasses.replace(snap, quality={**snap.quality, index: numbers})
        record_quality(kept, index, thresholds)
    except Exception:  # reporting must never fail the attempt that kept them
        log.exception("could not record turn %s/%d's quality", snap.record.session_id, index)


@dataclass
class TurnObservation:
    """Collects one delivery's facts; `finish` reports them once."""

    sid: str
    index: int
    attempt: int
    secret: str | None = None
    started: float = field(default_factory=time.monotonic)
    model: str | None = None
    image_size: str = "unknown"
    tier: str = LANE_STANDARD
    batch_id: str | None = None
    revision: int = 1
    call_s: float | None = None
    code: str | None = None
    error: EditQueueError | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    cost_usd: float = 0.0
    retry_in_s: float | None = None
    park_until: float | None = None
    park_reason: str | None = None  # retry_delay | daily_quota | outage | budget
    finished: bool = False

    @property
    def _size_labels(self) -> tuple[str, str, str]:
        return self.model or "unknown", self.image_size, self.tier

    def loaded(self, snap: SessionSnapshot, index: int) -> None:
        """The session is read: note the model and size; time the first attempt's queue wait."""
        self.model = snap.record.model
        self.batch_id = snap.record.batch_id
        self.image_size = effective_size(snap.record, snap.requests[index])[1] or "unknown"
        self.revision = snap.requests[index].revision
        if self.attempt == 1:
            wait = (datetime.now(UTC) - ready_at(snap, index)).total_seconds()
            metrics.families().queue_wait.observe(max(0.0, wait))

    def call(self, send: Callable[[], ApiResponse]) -> ApiResponse:
        """Run the API call `send` under a GenAI span, timing it, whatever it ends in."""
        fam = metrics.families()
        model = self.model or "unknown"
        inflight = fam.inflight.labels(model)
        name = f"{tracing.OPERATION} {model}"
        with tracing.span(
            name,
            gen_ai__operation__name=tracing.OPERATION,
            gen_ai__provider__name=tracing.PROVIDER,
            gen_ai__request__model=model,
        ) as span:
            inflight.inc()
            start = time.monotonic()
            try:
                response = send()
            except EditQueueError as exc:
                self._called(start, str(exc.status or "none"), exc)
                raise
            finally:
                inflight.dec()
            self.usage = response.usage
            self._called(start, "200", None)
            tracing.set_attributes(
                span,
                gen_ai__response__model=response.model_version,
                gen_ai__response__id=response.response_id,
                gen_ai__usage__input_tokens=self.usage.get("promptTokenCount"),
                gen_ai__usage__output_tokens=self.usage.get("candidatesTokenCount"),
            )
            metrics.record_tokens(model, self.usage)
            return response

    def _called(self, start: float, code: str, exc: EditQueueError | None) -> None:
        self.call_s = time.monotonic() - start
        self.code = code
        kind = exc.kind if exc else "ok"
        fam = metrics.families()
        fam.call_duration.labels(*self._size_labels).observe(self.call_s)
        fam.responses.labels(self.model or "unknown", code, kind).inc()
        tracing.record_genai(
            self.model or "unknown",
            self.call_s,
            exc.kind if exc else None,
            self.usage.get("promptTokenCount"),
            self.usage.get("candidatesTokenCount"),
        )

    def billed(self, cost_usd: float) -> None:
        """A call was billed (committed or not)."""
        self.cost_usd += cost_usd
        if cost_usd:
            fam = metrics.families()
            fam.cost.labels(self.model or "unknown", self.tier).inc(cost_usd)
            if self.batch_id is not None:
                fam.batch_cost.labels(self.batch_id).inc(cost_usd)

    def committed(
        self, snap: SessionSnapshot, result: TurnResult, thresholds: QualityThresholds
    ) -> None:
        """This delivery's result won the commit. Never raises (the turn is committed)."""
        try:
            fam = metrics.families()
            model, size, tier = self._size_labels
            duration = (result.committed_at - ready_at(snap, self.index)).total_seconds()
            fam.turn_duration.labels(model, size, tier).observe(max(0.0, duration))
            fam.images.labels(model, size).inc()
            fam.image_bytes.labels(size).observe(result.image.bytes)
            self._quality(snap, result, thresholds)
        except Exception:  # reporting must never fail a committed turn
            log.exception("could not record turn %s/%d's metrics", self.sid, self.index)

    def _quality(
        self, snap: SessionSnapshot, result: TurnResult, thresholds: QualityThresholds
    ) -> None:
        with_this = dataclasses.replace(snap, results={**snap.results, self.index: result})
        measured = [] if result.previous_metrics is None else [self.index - 1]
        measured += [] if result.metrics_deferred else [self.index]
        for index in measured:  # turn n-1 when this turn measured it, turn n unless deferred
            record_quality(with_this, index, thresholds)

    def throttled(self, wait_s: float) -> None:
        """The call gate deferred this attempt by `wait_s`."""
        fam = metrics.families()
        fam.ratelimit_waits.inc()
        fam.ratelimit_wait_seconds.inc(wait_s)

    @staticmethod
    def session_completed() -> None:
        """This delivery committed the session's last turn."""
        metrics.record_session("completed")

    def finish(self, outcome: str, repo: SessionRepository) -> None:
        """Report the delivery once: counters, the log line, the attempt record. Never raises."""
        if self.finished:
            return
        self.finished = True
        outcome = str(outcome)
        try:
            self._count(outcome)
            self._log(outcome)
            if outcome in STORED_OUTCOMES and self.call_s is not None:
                repo.record_attempt(self.sid, self._record(outcome))
        except Exception:  # reporting must never fail a turn
            log.exception(
                "could not report turn %s/%d attempt %d", self.sid, self.index, self.attempt
            )

    def _count(self, outcome: str) -> None:
        fam = metrics.families()
        fam.turns.labels(OUTCOME_LABELS.get(outcome, outcome)).inc()
        if outcome in ("retry", "parked", "fallback") and self.error is not None:
            fam.retries.labels(self.error.kind).inc()
        if outcome == "failed" and self.error is not None:
            metrics.record_session("failed")

    def _error_info(self) -> ErrorInfo | None:
        if self.error is None:
            return None
        message = redact(self.error.message, self.secret)
        return ErrorInfo(kind=self.error.kind, status=self.error.status, message=message)

    def _record(self, outcome: str) -> AttemptRecord:
        return AttemptRecord(
            index=self.index,
            attempt=self.attempt,
            request_revision=self.revision,
            outcome=OUTCOME_LABELS.get(outcome, outcome),
            latency_s=round(self.call_s, 3) if self.call_s is not None else None,
            error=self._error_info(),
            ended_at=datetime.now(UTC),
        )

    def fields(self, outcome: str) -> dict[str, Any]:
        """The log line's fields (also the JSON log record's extra fields)."""
        error = self._error_info()
        return {
            "session_id": self.sid,
            "turn": self.index,
            "attempt": self.attempt,
            "outcome": OUTCOME_LABELS.get(outcome, outcome),
            "model": self.model,
            "duration_s": round(time.monotonic() - self.started, 3),
            "latency_s": round(self.call_s, 3) if self.call_s is not None else None,
            "http_code": self.code,
            "tokens_in": self.usage.get("promptTokenCount"),
            "tokens_out": self.usage.get("candidatesTokenCount"),
            "cost_usd": round(self.cost_usd, 6),
            "reason": error.kind if error else None,
            "error": error.message if error else None,
            "retry_in_s": round(self.retry_in_s, 2) if self.retry_in_s is not None else None,
            "park_reason": self.park_reason,
            "park_until": _iso(self.park_until),
        }

    def _log(self, outcome: str) -> None:
        data = self.fields(outcome)
        shown = " ".join(
            f"{k}={v}"
            for k, v in data.items()
            if v is not None and k not in ("session_id", "turn", "attempt", "error")
        )
        message = f"turn {self.sid}/{self.index} attempt {self.attempt}: {shown}"
        if data["error"]:
            message += f" error={data['error']!r}"
        level = logging.WARNING if outcome in WARN_OUTCOMES else logging.INFO
        log.log(level, message, extra=data)
