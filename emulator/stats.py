"""Counting generateContent calls so tests and benchmarks can check paid calls and rates."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass

from emulator.errors import JsonDict

OUTCOME_OK = "ok"


@dataclass
class CallRecord:
    """One generateContent call: wall-clock start/end, outcome label and HTTP status (0: none)."""

    start: float
    end: float | None = None
    model: str = ""
    api_version: str = ""
    outcome: str = "in_flight"
    status: int = 0
    generation: int | None = None
    tier: str = "standard"  # the serviceTier the call asked for
    route: str = "generateContent"  # or "interactions" (a create call)
    request_bytes: int = 0  # the declared Content-Length of the request body
    images_in: int | None = None  # inline images the request carried (interactions: its input)


class Stats:
    """Thread-safe call log; `snapshot()` is what `GET /emulator/stats` returns."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[CallRecord] = []

    def begin(self, model: str, api_version: str = "") -> CallRecord:
        """Record the start of a call (time.time(), comparable across processes)."""
        record = CallRecord(start=time.time(), model=model, api_version=api_version)
        with self._lock:
            self._calls.append(record)
        return record

    def finish(
        self,
        record: CallRecord,
        outcome: str,
        status: int,
        generation: int | None = None,
        tier: str = "standard",
    ) -> None:
        """Record how a call ended (and which image generation it returned, if any)."""
        with self._lock:
            record.end, record.outcome, record.status = time.time(), outcome, status
            record.generation, record.tier = generation, tier

    def reset(self) -> None:
        """Forget every call."""
        with self._lock:
            self._calls.clear()

    def snapshot(self) -> JsonDict:
        """Totals by outcome and status, successes, and every call's timestamps."""
        with self._lock:
            calls = [asdict(c) for c in self._calls]
        outcomes = Counter(c["outcome"] for c in calls)
        statuses = Counter(str(c["status"]) for c in calls)
        return {
            "total_calls": len(calls),
            "by_tier": dict(Counter(c["tier"] for c in calls)),
            "by_route": dict(Counter(c["route"] for c in calls)),
            "successes": outcomes.get(OUTCOME_OK, 0),
            "in_flight": outcomes.get("in_flight", 0),
            "by_outcome": dict(outcomes),
            "by_status": dict(statuses),
            "calls": calls,
        }
