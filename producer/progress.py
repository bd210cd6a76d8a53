"""Waiting for sessions to finish, with a progress bar of turns done out of turns requested."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tqdm import tqdm

from shared.models import SessionState, TurnState
from shared.status_document import SessionStatus

TERMINAL_SESSION_STATES = (SessionState.COMPLETED, SessionState.FAILED, SessionState.CANCELLED)
FINISHED_TURN_STATES = (TurnState.SUCCEEDED, TurnState.FAILED, TurnState.CANCELLED)
DEFAULT_POLL_S = 0.5

Fetch = Callable[[str], SessionStatus]


@dataclass(frozen=True)
class WaitResult:
    """Where the sessions ended up, and whether waiting gave up for lack of progress."""

    statuses: list[SessionStatus]
    stalled: bool = False

    @property
    def all_completed(self) -> bool:
        """True when every session completed."""
        return all(s.state is SessionState.COMPLETED for s in self.statuses)


def is_terminal(status: SessionStatus) -> bool:
    """True when the session will not move without a retry, an append or a fork."""
    return status.state in TERMINAL_SESSION_STATES


def turns_finished(status: SessionStatus) -> int:
    """How many of the session's turns are succeeded, failed or cancelled."""
    return sum(1 for t in status.turns if t.state in FINISHED_TURN_STATES)


def _summary(statuses: Sequence[SessionStatus]) -> str:
    counts = Counter(s.state.value for s in statuses)
    return ", ".join(f"{state} {n}" for state, n in sorted(counts.items()))


def wait_for(
    fetch: Fetch,
    sids: Sequence[str],
    *,
    poll_s: float = DEFAULT_POLL_S,
    idle_timeout_s: float | None = None,
    show: bool = True,
) -> WaitResult:
    """Poll until every session is terminal (or nothing moved for `idle_timeout_s`)."""
    progress = tqdm(total=0, unit="turn", desc="turns", disable=not show, file=sys.stderr)
    last: tuple[int, ...] = ()
    moved_at = time.monotonic()
    with progress:
        while True:
            statuses = [fetch(sid) for sid in sids]
            progress.total = sum(len(s.turns) for s in statuses)
            progress.n = sum(turns_finished(s) for s in statuses)
            progress.set_postfix_str(_summary(statuses), refresh=True)
            if all(is_terminal(s) for s in statuses):
                return WaitResult(statuses)
            marker = tuple(_marker(s) for s in statuses)
            if marker != last:
                last, moved_at = marker, time.monotonic()
            elif idle_timeout_s is not None and time.monotonic() - moved_at > idle_timeout_s:
                return WaitResult(statuses, stalled=True)
            time.sleep(poll_s)


def _marker(status: SessionStatus) -> int:
    """Changes whenever a turn starts, retries or finishes."""
    return hash(tuple((t.state, t.attempts) for t in status.turns))
