"""Short-lived coordination state (leases, the live turn index) behind one small interface.

The Redis implementation lives in `shared/redis_state.py`; this module holds the Protocol and
the in-memory twin used by unit tests and the embedded `editqueue run`. Nothing here is the
source of truth: losing it loses no session (a reconcile sweep rebuilds it from the store).
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from shared.models import TurnState
from shared.turn_records import ErrorInfo


class LiveTurn(BaseModel):
    """What the status index knows about an uncommitted turn."""

    model_config = ConfigDict(frozen=True)

    state: TurnState
    attempts: int = 0
    error: ErrorInfo | None = None
    reason: str | None = None
    due_at: float | None = None
    updated_at: float = 0.0
    lease_until: float | None = None  # a running turn's heartbeat: renewed while it runs


def with_beat(live: LiveTurn, until: float | None) -> LiveTurn:
    """A running entry with its heartbeat's deadline (others unchanged)."""
    if until is None or live.state is not TurnState.RUNNING:
        return live
    return live.model_copy(update={"lease_until": until})


class Coordinator(Protocol):
    """Leases and the live turn index, shared by every producer and worker."""

    def acquire_lease(self, key: str, owner: str, ttl_s: float) -> bool:
        """Take `key` for `owner` unless someone else holds it; re-entrant for the same owner."""
        ...

    def release_lease(self, key: str, owner: str) -> None:
        """Give `key` back if `owner` still holds it."""
        ...

    def set_live(self, sid: str, index: int, live: LiveTurn) -> None:
        """Record an uncommitted turn's live state."""
        ...

    def clear_live(self, sid: str, index: int) -> None:
        """Forget a turn's live state (it is committed or failed in the store)."""
        ...

    def live(self, sid: str) -> dict[int, LiveTurn]:
        """Every live turn of a session."""
        ...

    def track_session(self, sid: str) -> None:
        """Add a session to the index of known sessions."""
        ...

    def tracked_sessions(self) -> list[str]:
        """Every session the index knows."""
        ...

    def index_park(self, sid: str, index: int, due_at: float) -> None:
        """Remember that turn n is parked until `due_at` (the sweep looks here first)."""
        ...

    def due_parks(self, now: float, limit: int) -> list[tuple[str, int]]:
        """Parked turns whose time has come, oldest first."""
        ...

    def drop_park(self, sid: str, index: int) -> None:
        """Forget a parked turn in the index."""
        ...

    def mark_batch_due(self, sid: str, index: int, attempt: int, at: float) -> None:
        """Turn n of a batch-tier session waits for the next wave (the batcher looks here)."""
        ...

    def batch_due(self) -> dict[tuple[str, int], tuple[int, float]]:
        """Every turn waiting for a wave: (sid, index) -> (attempt, when it became due)."""
        ...

    def drop_batch_due(self, sid: str, index: int) -> None:
        """Forget a turn waiting for a wave (it went into one, or is done)."""
        ...

    def beat(self, sid: str, index: int, until: float) -> None:
        """Turn n's worker is alive and holds the turn until `until` (its heartbeat)."""
        ...

    def lapsed(self, now: float, limit: int) -> list[tuple[str, int]]:
        """Running turns whose heartbeat stopped before `now`, oldest first."""
        ...

    def drop_running(self, sid: str, index: int) -> None:
        """Forget turn n's heartbeat (its delivery ended)."""
        ...

    def has_epoch(self) -> bool:
        """False when the coordination state was lost (a wiped or new Redis)."""
        ...

    def mark_epoch(self) -> None:
        """Record that a full reconcile rebuilt the coordination state."""
        ...


class MemoryCoordinator:
    """In-process twin of the Redis coordinator (threads share it; processes do not)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._leases: dict[str, tuple[str, float]] = {}
        self._live: dict[str, dict[int, LiveTurn]] = {}
        self._sessions: set[str] = set()
        self._parks: dict[tuple[str, int], float] = {}
        self._batch_due: dict[tuple[str, int], tuple[int, float]] = {}
        self._beats: dict[tuple[str, int], float] = {}
        self._epoch = False

    def acquire_lease(self, key: str, owner: str, ttl_s: float) -> bool:
        now = time.monotonic()
        with self._lock:
            holder = self._leases.get(key)
            if holder and holder[0] != owner and holder[1] > now:
                return False
            self._leases[key] = (owner, now + ttl_s)
            return True

    def release_lease(self, key: str, owner: str) -> None:
        with self._lock:
            if self._leases.get(key, ("", 0.0))[0] == owner:
                del self._leases[key]

    def set_live(self, sid: str, index: int, live: LiveTurn) -> None:
        with self._lock:
            self._live.setdefault(sid, {})[index] = live

    def clear_live(self, sid: str, index: int) -> None:
        with self._lock:
            self._live.get(sid, {}).pop(index, None)

    def live(self, sid: str) -> dict[int, LiveTurn]:
        with self._lock:
            found = dict(self._live.get(sid, {}))
            beats = {n: self._beats.get((sid, n)) for n in found}
        return {n: with_beat(live, beats[n]) for n, live in found.items()}

    def track_session(self, sid: str) -> None:
        with self._lock:
            self._sessions.add(sid)

    def tracked_sessions(self) -> list[str]:
        with self._lock:
            return sorted(self._sessions)

    def index_park(self, sid: str, index: int, due_at: float) -> None:
        with self._lock:
            self._parks[(sid, index)] = due_at

    def due_parks(self, now: float, limit: int) -> list[tuple[str, int]]:
        with self._lock:
            due = sorted((at, key) for key, at in self._parks.items() if at <= now)
        return [key for _, key in due[:limit]]

    def drop_park(self, sid: str, index: int) -> None:
        with self._lock:
            self._parks.pop((sid, index), None)

    def mark_batch_due(self, sid: str, index: int, attempt: int, at: float) -> None:
        with self._lock:
            self._batch_due[(sid, index)] = (attempt, at)

    def batch_due(self) -> dict[tuple[str, int], tuple[int, float]]:
        with self._lock:
            return dict(self._batch_due)

    def drop_batch_due(self, sid: str, index: int) -> None:
        with self._lock:
            self._batch_due.pop((sid, index), None)

    def beat(self, sid: str, index: int, until: float) -> None:
        with self._lock:
            self._beats[(sid, index)] = until

    def lapsed(self, now: float, limit: int) -> list[tuple[str, int]]:
        with self._lock:
            due = sorted((at, key) for key, at in self._beats.items() if at < now)
        return [key for _, key in due[:limit]]

    def drop_running(self, sid: str, index: int) -> None:
        with self._lock:
            self._beats.pop((sid, index), None)

    def has_epoch(self) -> bool:
        return self._epoch

    def mark_epoch(self) -> None:
        self._epoch = True
