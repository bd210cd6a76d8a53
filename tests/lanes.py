"""A recording enqueuer that also notes each turn's lane (standard or flex), for tier tests."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LaneEnqueuer:
    """Records (sid, index, attempt, lane) of every enqueued turn instead of sending it."""

    calls: list[tuple[str, int, int, str]] = field(default_factory=list)

    def enqueue_turn(
        self,
        sid: str,
        index: int,
        *,
        attempt: int = 1,
        countdown_s: float = 0,
        lane: str = "standard",
    ) -> None:
        self.calls.append((sid, index, attempt, lane))
