"""One turn, start to finish: the steps of DESIGN.md "The turn task", each a small method."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from shared.backoff import backoff_s
from shared.catalog import profile_for
from shared.coordination import LiveTurn
from shared.errors import EditQueueError, NoImage, PermanentError, RateLimited, TransientError
from shared.events import Event, EventKind, make_event
from shared.history import check_fits, estimate_tokens, request_payload
from shared.models import ErrorInfo, FailureRecord, TurnResult, TurnState
from shared.request_body import StreamingBody
from shared.responses import ApiResponse, ReturnedPart, check_response, redact
from shared.runtime import Services
from shared.sessions import SessionSnapshot
from worker.results import build_result

log = logging.getLogger("editqueue.turn")

BUSY_RETRY_S = 5.0


class Outcome(StrEnum):
    """How one delivery of `run_turn` ended."""

    COMMITTED = "committed"
    DUPLICATE = "duplicate"  # another attempt committed first; we carried on with the winner
    ALREADY_DONE = "already_done"
    NOT_READY = "not_ready"  # turn n-1 is not committed yet: its commit will chain this one
    NO_REQUEST = "no_request"
    CANCELLED = "cancelled"
    FAILED = "failed"
    RETRY = "retry"
    BUSY = "busy"


def error_info(exc: EditQueueError, secret: str | None) -> ErrorInfo:
    """What the status shows of an error, with the API key scrubbed."""
    return ErrorInfo(kind=exc.kind, status=exc.status, message=redact(exc.message, secret))


@dataclass
class TurnRunner:
    """Runs `run_turn(sid, n)` for one delivery; safe to run for duplicates and redeliveries."""

    services: Services
    owner: str
    rng: random.Random = field(default_factory=random.Random)

    @property
    def _secret(self) -> str | None:
        key = self.services.settings.api_key
        return key.get_secret_value() if key else None

    def run(self, sid: str, index: int, attempt: int) -> Outcome:
        """Steps 1-8: skip what is done, lease, call, commit, chain."""
        repo = self.services.repo
        if repo.is_committed(sid, index):
            self._after_commit(sid, index)
            return Outcome.ALREADY_DONE
        if repo.is_cancelled(sid):
            self.services.coord.clear_live(sid, index)
            return Outcome.CANCELLED
        if not repo.is_committed(sid, index - 1):
            return Outcome.NOT_READY
        lease = f"{sid}:{index}"
        # Outlives a healthy attempt; a crashed holder's lease expires before redelivery.
        ttl = self.services.settings.longest_task_s
        if not self.services.coord.acquire_lease(lease, self.owner, ttl):
            # Another delivery runs it; come back in case that holder has died.
            self.services.enqueuer.enqueue_turn(
                sid, index, attempt=attempt, countdown_s=BUSY_RETRY_S
            )
            return Outcome.BUSY
        try:
            return self._attempt(sid, index, attempt)
        finally:
            self.services.coord.release_lease(lease, self.owner)

    def _attempt(self, sid: str, index: int, attempt: int) -> Outcome:
        snap = self.services.repo.snapshot(sid)
        request = snap.requests.get(index)
        if index in snap.results:
            self._after_commit(sid, index, snap.results[index])
            return Outcome.ALREADY_DONE
        if request is None:
            return Outcome.NO_REQUEST
        failure = snap.failures.get(index)
        if failure and failure.request_revision == request.revision:
            return Outcome.FAILED  # a stale redelivery of a turn that already failed
        self._live(sid, index, TurnState.RUNNING, attempt)
        try:
            response, chosen = self._call(snap, index)
        except TransientError as exc:
            return self._after_transient(sid, index, attempt, exc, request.revision)
        except PermanentError as exc:
            return self._fail(sid, index, attempt, exc, request.revision)
        return self._commit(snap, index, attempt, response, chosen)

    def _call(self, snap: SessionSnapshot, index: int) -> tuple[ApiResponse, ReturnedPart]:
        record = snap.record
        profile = profile_for(record.model)
        payload = request_payload(record, snap.requests, snap.results, index)
        body = StreamingBody(payload, self.services.blobs.path)
        tokens = estimate_tokens(profile, record, snap.requests, index)
        check_fits(profile, tokens, body.content_length, index)
        if self.services.repo.is_cancelled(record.session_id):
            raise _Cancelled(f"session {record.session_id} was cancelled")
        response = self.services.api.generate(record.model, body)
        return response, check_response(response)

    def _commit(
        self,
        snap: SessionSnapshot,
        index: int,
        attempt: int,
        response: ApiResponse,
        chosen: ReturnedPart,
    ) -> Outcome:
        sid = snap.record.session_id
        result = build_result(
            blobs=self.services.blobs,
            record=snap.record,
            request=snap.requests[index],
            response=response,
            chosen=chosen,
            attempt=attempt,
            now=datetime.now(UTC),
            price_overrides=self.services.settings.price_overrides,
        )
        winner, won = self.services.repo.commit_result(sid, result)
        self.services.coord.clear_live(sid, index)
        log.info("turn %s/%d %s (attempt %d)", sid, index, "committed" if won else "dup", attempt)
        self._after_commit(sid, index, winner)
        return Outcome.COMMITTED if won else Outcome.DUPLICATE

    def _after_commit(self, sid: str, index: int, result: TurnResult | None = None) -> None:
        """Step 8 (also for redeliveries, in case the first delivery died right after commit)."""
        has_next = self.chain_next(sid, index)
        result = result or self.services.repo.result(sid, index)
        if result is None:
            return
        data = {
            "state": "succeeded",
            "image": result.image.model_dump(),
            "cost_usd": result.cost_usd,
        }
        now = datetime.now(UTC)
        self._emit(make_event(EventKind.TURN_SUCCEEDED, sid, now, turn=index, data=data))
        if not has_next:
            self._emit(make_event(EventKind.SESSION_COMPLETED, sid, now, turn=index))

    def chain_next(self, sid: str, index: int) -> bool:
        """Enqueue turn n+1 if it is requested (the appender checks from its side too)."""
        if self.services.repo.request(sid, index + 1) is None:
            return False
        self.services.enqueuer.enqueue_turn(sid, index + 1)
        return True

    def _emit(self, event: Event) -> None:
        try:
            self.services.events.emit(event)
        except Exception:  # an event problem must never fail or block a turn
            log.exception("could not emit %s for %s", event.kind, event.session_id)

    def _after_transient(
        self, sid: str, index: int, attempt: int, exc: TransientError, revision: int
    ) -> Outcome:
        settings = self.services.settings
        limit = settings.no_image_attempts if isinstance(exc, NoImage) else settings.max_attempts
        if attempt >= limit:
            return self._fail(sid, index, attempt, exc, revision)
        retry_after = exc.retry_after_s if isinstance(exc, RateLimited) else None
        delay = backoff_s(
            attempt,
            base_s=settings.backoff_base_s,
            cap_s=settings.max_countdown_s,
            retry_after_s=retry_after,
            rng=self.rng,
        )
        delay = min(delay, settings.max_countdown_s)
        self._live(sid, index, TurnState.QUEUED, attempt, error_info(exc, self._secret))
        self.services.enqueuer.enqueue_turn(sid, index, attempt=attempt + 1, countdown_s=delay)
        log.warning(
            "turn %s/%d attempt %d: %s; retry in %.1fs", sid, index, attempt, exc.kind, delay
        )
        return Outcome.RETRY

    def _fail(
        self, sid: str, index: int, attempt: int, exc: EditQueueError, revision: int
    ) -> Outcome:
        if isinstance(exc, _Cancelled):
            self.services.coord.clear_live(sid, index)
            return Outcome.CANCELLED
        failure = FailureRecord(
            index=index,
            error=error_info(exc, self._secret),
            attempts=attempt,
            request_revision=revision,
            failed_at=datetime.now(UTC),
        )
        self.services.repo.record_failure(sid, failure)
        self.services.coord.clear_live(sid, index)
        log.warning("turn %s/%d failed: %s", sid, index, failure.error.message)
        data = {"state": "failed", "error": failure.error.model_dump(), "attempts": attempt}
        for kind in (EventKind.TURN_FAILED, EventKind.SESSION_FAILED):
            event = make_event(
                kind, sid, failure.failed_at, turn=index, revision=revision, data=data
            )
            self._emit(event)
        return Outcome.FAILED

    def _live(
        self, sid: str, index: int, state: TurnState, attempt: int, error: ErrorInfo | None = None
    ) -> None:
        live = LiveTurn(state=state, attempts=attempt, error=error, updated_at=time.time())
        self.services.coord.set_live(sid, index, live)


class _Cancelled(PermanentError):
    """The session was cancelled while the turn was being prepared."""

    kind = "cancelled"
