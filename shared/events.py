"""Events a session emits (for webhooks and logs): what happened, with one stable id each."""

from __future__ import annotations

import threading
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field


class EventKind(StrEnum):
    """The events a subscriber can receive."""

    TURN_SUCCEEDED = "turn.succeeded"
    TURN_FAILED = "turn.failed"
    SESSION_COMPLETED = "session.completed"
    SESSION_FAILED = "session.failed"
    SESSION_CANCELLED = "session.cancelled"


class Event(BaseModel):
    """One event; `event_id` is the same for every redelivery of the same fact."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    kind: EventKind
    session_id: str
    turn: int | None = None
    created_at: datetime
    data: dict[str, Any] = Field(default_factory=dict)


def event_id(kind: EventKind, sid: str, turn: int | None, revision: int = 1) -> str:
    """A deterministic id: a fact emitted twice (a redelivered turn) keeps its id."""
    return f"evt_{sid}_{turn or 0}_{revision}_{kind.value.replace('.', '_')}"


def make_event(
    kind: EventKind,
    sid: str,
    now: datetime,
    *,
    turn: int | None = None,
    revision: int = 1,
    data: dict[str, Any] | None = None,
) -> Event:
    """An event with its deterministic id."""
    return Event(
        event_id=event_id(kind, sid, turn, revision),
        kind=kind,
        session_id=sid,
        turn=turn,
        created_at=now,
        data=data or {},
    )


class EventSink(Protocol):
    """Where events go; emitting must never block or fail a turn."""

    def emit(self, event: Event) -> None:
        """Hand the event over (queue it); never raise for delivery problems."""
        ...


class NullSink:
    """Drops every event (no subscriber configured)."""

    def emit(self, event: Event) -> None:
        return None


class MemorySink:
    """Keeps events in a list (tests and the embedded run)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)
