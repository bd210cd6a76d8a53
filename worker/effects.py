"""What a turn leaves behind when it does not commit: a requeue, a park, or a failure."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.broker import LANE_STANDARD, dispatch
from shared.coordination import LiveTurn
from shared.errors import EditQueueError
from shared.events import Event, EventKind, make_event
from shared.models import TurnState
from shared.redaction import redact
from shared.services import Services
from shared.turn_records import ErrorInfo, FailureRecord, ParkRecord

log = logging.getLogger("editqueue.turn")


INTERNAL_KIND = "internal"  # a bug: not an error editqueue raises on purpose
MAX_BUG_CHARS = 300


def error_info(exc: BaseException, secret: str | None) -> ErrorInfo:
    """What the status shows of an error (a bug's type and words), with the API key scrubbed."""
    if isinstance(exc, EditQueueError):
        return ErrorInfo(kind=exc.kind, status=exc.status, message=redact(exc.message, secret))
    return ErrorInfo(kind=INTERNAL_KIND, message=redact(repr(exc), secret)[:MAX_BUG_CHARS])


@dataclass
class TurnEffects:
    """Side effects on the store, the live index, the queue and events for turn `index`."""

    services: Services
    sid: str
    index: int
    lane: str = LANE_STANDARD  # the lane a requeue goes back on

    @property
    def secret(self) -> str | None:
        """The API key, to scrub from messages."""
        return self.key_of(self.services)

    @staticmethod
    def key_of(services: Services) -> str | None:
        """The API key of `services`, to scrub from messages."""
        key = services.settings.api_key
        return key.get_secret_value() if key else None

    def running(self, attempt: int) -> None:
        """Show the turn as running."""
        live = LiveTurn(state=TurnState.RUNNING, attempts=attempt, updated_at=time.time())
        self.services.coord.set_live(self.sid, self.index, live)

    def requeue(
        self,
        attempt: int,
        countdown_s: float,
        exc: EditQueueError | None,
        reason: str | None,
        lane: str | None = None,
    ) -> None:
        """Back on the queue (on `lane`, default this turn's) after a countdown the broker holds."""
        error = error_info(exc, self.secret) if exc else None
        dispatch(
            self.services,
            self.sid,
            self.index,
            attempt=attempt,
            countdown_s=countdown_s,
            error=error,
            reason=reason,
            lane=lane or self.lane,
        )

    def park(
        self,
        attempt: int,
        due_at: float,
        reason: str,
        exc: EditQueueError,
        revision: int,
        parks: int,
    ) -> None:
        """Out of the broker until `due_at`: the store says why and when; the index points here."""
        error = error_info(exc, self.secret)
        record = ParkRecord(
            index=self.index,
            reason=reason,
            due_at=due_at,
            attempt=attempt,
            parks=parks,
            request_revision=revision,
            error=error,
        )
        self.services.repo.park(self.sid, record)
        self.services.coord.index_park(self.sid, self.index, due_at)
        live = LiveTurn(
            state=TurnState.WAITING,
            attempts=attempt - 1,
            error=error,
            reason=reason,
            due_at=due_at,
            updated_at=time.time(),
        )
        self.services.coord.set_live(self.sid, self.index, live)

    def fail(self, attempt: int, exc: BaseException, revision: int) -> None:
        """Write `failure.json` with the reason and stop the session."""
        failure = FailureRecord(
            index=self.index,
            error=error_info(exc, self.secret),
            attempts=attempt,
            request_revision=revision,
            failed_at=datetime.now(UTC),
        )
        self.services.repo.record_failure(self.sid, failure)
        self.done()
        data = {"state": "failed", "error": failure.error.model_dump(), "attempts": attempt}
        for kind in (EventKind.TURN_FAILED, EventKind.SESSION_FAILED):
            self.emit(
                make_event(
                    kind, self.sid, failure.failed_at, turn=self.index, revision=revision, data=data
                )
            )

    def done(self) -> None:
        """The store now says how the turn ended: drop its live entry and park record."""
        self.services.coord.clear_live(self.sid, self.index)
        self.services.coord.drop_park(self.sid, self.index)

    def emit(self, event: Event) -> None:
        """Hand an event to the sink; never let it fail the turn."""
        try:
            self.services.events.emit(event)
        except Exception:  # an event problem must never fail or block a turn
            log.exception("could not emit %s for %s", event.kind, event.session_id)
