"""A total time budget for one API call, on the monotonic clock."""

from __future__ import annotations

import time

from shared.errors import Timeout


class Deadline:
    """A total time budget on the monotonic clock."""

    def __init__(self, total_s: float) -> None:
        self.total_s = total_s
        self._start = time.monotonic()

    def elapsed(self) -> float:
        """Seconds since the budget started."""
        return time.monotonic() - self._start

    def remaining(self) -> float:
        """Seconds left (negative once overrun)."""
        return self.total_s - self.elapsed()

    def check(self, stage: str) -> float:
        """Seconds left; Timeout naming `stage` when none are."""
        remaining = self.remaining()
        if remaining <= 0:
            raise Timeout(
                f"the API call did not finish within its {self.total_s:g}s deadline ({stage}); "
                "it is retried, raise EDITQUEUE_API_TIMEOUT_S if calls are legitimately slower"
            )
        return remaining
