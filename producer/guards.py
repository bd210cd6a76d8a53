"""Which steering operations a session's state allows; a refusal names the state and what works.

A refusal is InvalidState (CLI exit 2, HTTP 409) when the input is fine but the session is in the
wrong state, and InvalidSpec (exit 2, 422) when the input itself cannot be right.
"""

from __future__ import annotations

from shared.errors import InvalidSpec, InvalidState, append_command, continue_elsewhere, redo_turn
from shared.models import SessionState, TurnState
from shared.sessions import SessionSnapshot
from shared.status import turn_state
from shared.status_document import SessionStatus


def committed_prefix(snap: SessionSnapshot) -> int:
    """How many turns from turn 1 on are committed without a gap."""
    done = 0
    while done + 1 in snap.results:
        done += 1
    return done


def refuse_if_cancelled(snap: SessionSnapshot) -> None:
    """A cancelled session never runs again: say how to continue elsewhere."""
    if snap.cancelled:
        sid = snap.record.session_id
        advice = continue_elsewhere(sid, committed_prefix(snap))
        raise InvalidState(f"session {sid} is cancelled; {advice}")


def check_cancel(status: SessionStatus) -> None:
    """Cancelling means something only while a turn is queued or running (again: harmless)."""
    sid = status.session_id
    if status.state is SessionState.COMPLETED:
        raise InvalidState(
            f"session {sid} is completed: nothing is left to cancel; {append_command(sid)} "
            "adds a turn"
        )
    if status.state is SessionState.FAILED:
        failed = next(t.index for t in status.turns if t.state is TurnState.FAILED)
        raise InvalidState(
            f"session {sid} is failed (turn {failed}): nothing is running to cancel; "
            f"`editqueue retry {sid}` runs that turn again"
        )


def _first_failed(snap: SessionSnapshot) -> int | None:
    return next(
        (n for n in sorted(snap.requests) if turn_state(snap, n, None) is TurnState.FAILED), None
    )


def retry_target(snap: SessionSnapshot, index: int | None) -> int:
    """The turn a retry re-runs (default: the first failed), or a refusal saying what works."""
    sid = snap.record.session_id
    refuse_if_cancelled(snap)
    if index is None:
        index = _first_failed(snap)
        if index is None:
            last = snap.last_index
            raise InvalidState(
                f"session {sid} has no failed turn to retry; turn {last} is "
                f"{turn_state(snap, last, None)}: {_retry_instead(sid, last, snap)}"
            )
    if index not in snap.requests:
        raise InvalidSpec(f"session {sid} has no turn {index}; turns are 1..{snap.last_index}")
    state = turn_state(snap, index, None)
    if state is not TurnState.FAILED:
        where = "succeeded" if state is TurnState.SUCCEEDED else f"is {state}"
        raise InvalidState(
            f"turn {index} of {sid} {where}; only a failed turn can be retried: "
            f"{_retry_instead(sid, index, snap)}"
        )
    return index


def _retry_instead(sid: str, index: int, snap: SessionSnapshot) -> str:
    if turn_state(snap, index, None) is TurnState.SUCCEEDED:
        return redo_turn(sid, index)
    return f"wait for it (`editqueue status {sid}`) or stop the session (`editqueue cancel {sid}`)"


def check_fork(snap: SessionSnapshot, at: int) -> None:
    """Turns 1..at must exist and be committed."""
    sid = snap.record.session_id
    done = committed_prefix(snap)
    if at < 1 or at > snap.last_index:
        allowed = f"pick 1..{done}" if done else "it has no committed turn yet"
        raise InvalidSpec(f"cannot fork {sid} at turn {at}: {allowed}")
    if at > done:
        wait = f"wait for it (`editqueue status {sid}`)"
        allowed = f"pick 1..{done} or {wait}" if done else wait
        raise InvalidState(f"cannot fork {sid} at turn {at}: it is not committed yet; {allowed}")
