"""Steering and inspecting stored sessions (`producer.sessions`): status, retry, cancel, fork.

With `producer.submission` (new sessions and turns), the producer's Python API. Every function
takes the process's `Services`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from producer.guards import check_cancel, check_fork, retry_target
from producer.limits import prompt_problem
from producer.listing import live_summary, summaries
from producer.manifest import check_budget
from producer.report import write_report
from producer.session_ids import checked_id, generate_session_id, require_free, taken
from producer.submission import enqueue, limits_of
from shared.errors import InvalidSpec
from shared.events import EventKind, make_event
from shared.metrics import record_session
from shared.reconcile import reconcile as reconcile_store
from shared.services import Services, index_of
from shared.session_index import StoredSummary
from shared.session_spec import HistoryPolicy
from shared.status import build_status
from shared.status_document import SessionStatus


def _now() -> datetime:
    return datetime.now(UTC)


def session_status(services: Services, sid: str) -> SessionStatus:
    """The status document of one session (the store's truth merged with the live index)."""
    snap = services.repo.snapshot(sid)
    return build_status(snap, services.coord.live(sid), services.settings.quality)


def list_sessions(services: Services) -> list[StoredSummary]:
    """A summary row of every indexed session, in id order (see `reconcile --full`)."""
    return list(summaries(services))


def retry_turn(
    services: Services, sid: str, index: int | None = None, prompt: str | None = None
) -> int:
    """Run a failed turn again (optionally reworded); later turns follow by the chain."""
    snap = services.repo.snapshot(sid)
    index = retry_target(snap, index)
    request = snap.requests[index]
    if prompt is not None and not prompt.strip():
        raise InvalidSpec("--prompt is empty; write what this turn should change")
    reason = None if prompt is None else prompt_problem(prompt, limits_of(services))
    if reason is not None:
        raise InvalidSpec(f"--prompt {reason}")
    update = {"revision": request.revision + 1, "prompt": prompt or request.prompt}
    services.repo.replace_request(sid, request.model_copy(update=update))
    services.repo.clear_failure(sid, index)
    index_of(services).mark_open(sid)
    services.coord.clear_live(sid, index)
    enqueue(services, sid, index, snap.record.tier)
    return index


def cancel(services: Services, sid: str) -> None:
    """Stop the session before its next API call (a running call still commits).

    Refused (InvalidState) when nothing is queued or running: a completed or failed session.
    """
    check_cancel(session_status(services, sid))
    services.repo.cancel(sid)
    record_session("cancelled")
    services.events.emit(make_event(EventKind.SESSION_CANCELLED, sid, _now()))


def fork(
    services: Services,
    sid: str,
    at: int,
    new_session_id: str | None = None,
    history: HistoryPolicy | None = None,
    budget_usd: float | None = None,
) -> str:
    """A new session holding turns 1..at of `sid` (requests and results; blobs are shared).

    With `history`, the fork replays its turns under that policy (e.g. first+last:K re-anchors a
    session that outgrew the request limit); with `budget_usd`, it spends up to that (its copied
    turns count), since a session's own budget is fixed.
    """
    repo = services.repo
    snap = repo.snapshot(sid)
    check_fork(snap, at)
    new_sid = checked_id(new_session_id) if new_session_id else generate_session_id()
    require_free(repo, new_sid)
    update = {"session_id": new_sid, "forked_from": sid, "created_at": _now(), "batch_id": None}
    if history is not None:
        update["history"] = history
    if budget_usd is not None:
        check_budget(budget_usd, "--budget-usd")
        update["budget_usd"] = budget_usd
    for index in range(1, at + 1):  # session.json last: the fork exists only when complete
        if not repo.add_request(new_sid, snap.requests[index]):
            raise taken(new_sid)  # turn 1 is the id's claim: a submit with this id is under way
        repo.commit_result(new_sid, snap.results[index])
    # Turn `at` may have left its numbers to a turn the fork does not copy (still being measured:
    # the fork's own next turn measures it)
    if snap.results[at].metrics_deferred and (numbers := snap.metrics_of(at)) is not None:
        repo.put_quality(new_sid, at, numbers)
    if not repo.create_session(snap.record.model_copy(update=update)):
        raise taken(new_sid)
    services.coord.track_session(new_sid)
    row = live_summary(services, new_sid)
    if row is not None:  # complete from the start: a summary, no open marker
        index_of(services).write_summary(row)
    return new_sid


def reconcile(services: Services, *, include_budget: bool = False, full: bool = False) -> int:
    """Re-enqueue every due turn of the open sessions (with `full`, of every stored session,
    rebuilding the index); returns how many were enqueued."""
    return reconcile_store(services, time.time(), include_budget=include_budget, full=full)


def export(services: Services, sid: str, out_dir: Path) -> Path:
    """Write the session's images, evolution strip, report and status into `out_dir`."""
    snap = services.repo.snapshot(sid)
    status = build_status(snap, services.coord.live(sid), services.settings.quality)
    return write_report(status, snap, services.blobs.read, out_dir)
