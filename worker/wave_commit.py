"""Turning a finished wave's lines into committed turns, through the synchronous turn's commit.

Each line goes through `TurnRunner.commit` (blobs, then `result.json` with If-None-Match, then
the next turn made due), so a line seen twice (a batcher killed half-way re-reads the wave) is
committed once. A line that failed follows the normal error rules: transient goes back for the
next wave (until `max_attempts`), permanent writes `failure.json`. A cancelled session's lines are
not committed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

from shared.api_errors import classify_http_error
from shared.broker import LANE_BATCH
from shared.errors import EditQueueError, PermanentError, TransientError
from shared.responses import check_response, parse_success
from shared.waves import WaveLine
from worker.effects import TurnEffects
from worker.spend import BudgetHold, budget_scopes
from worker.turn import Turn, TurnRunner
from worker.wiring import WorkerServices

log = logging.getLogger("editqueue.batcher")


def line_back(services: WorkerServices, line: WaveLine, exc: EditQueueError) -> str:
    """A line that did not come back usable: due for the next wave, or failed when out of tries
    (`worker.actions.action_for` on the batch lane decides)."""
    runner = TurnRunner(services, owner=line.key, lane=LANE_BATCH)
    turn = Turn(line.session_id, line.index, line.attempt, revision=line.revision, in_call=True)
    effects = TurnEffects(services, line.session_id, line.index, LANE_BATCH)
    return runner.carry_out(exc, turn, effects).value


def _answer(result: dict[str, Any], latency_s: float) -> Any:
    if "error" in result or "response" not in result:
        error = result.get("error") or {"code": 500, "message": "the line has no response"}
        status = int(error.get("code") or 500)
        raise classify_http_error(status, json.dumps({"error": error}).encode())
    response = parse_success(json.dumps(result["response"]).encode())
    return dataclasses.replace(response, latency_s=latency_s)


def commit_line(
    services: WorkerServices, line: WaveLine, result: dict[str, Any], latency_s: float
) -> str:
    """Commit one line of a finished wave; returns its outcome."""
    repo = services.repo
    snap = repo.snapshot(line.session_id, through=line.index)
    runner = TurnRunner(services, owner=line.key, lane=LANE_BATCH)
    request = snap.requests.get(line.index)
    if line.index in snap.results:  # committed before (a re-read wave): make sure it chained
        runner.after_commit(
            line.session_id,
            line.index,
            snap.results[line.index],
            redelivered=True,
            next_listed=snap.later_requested,
        )
        return "already_done"
    if request is None or request.revision != line.revision:
        return "skipped"  # reworded by a retry since: the new revision runs on its own
    failure = snap.failures.get(line.index)
    if failure is not None and failure.request_revision == line.revision:
        return "failed"  # already failed on an earlier read of this wave
    if snap.cancelled:
        TurnEffects(services, line.session_id, line.index, LANE_BATCH).done()
        turn = Turn(line.session_id, line.index, line.attempt, snap, revision=line.revision)
        runner.keep_previous_quality(turn)
        return "cancelled"
    scopes = budget_scopes(repo, snap)
    hold = BudgetHold(services.ledger, line.key, scopes, held=list(scopes))
    try:
        response = _answer(result, latency_s)
        chosen = check_response(response)
    except (TransientError, PermanentError) as exc:
        hold.settle(0.0)
        return line_back(services, line, exc)
    turn = Turn(line.session_id, line.index, line.attempt, snap, revision=line.revision)
    effects = TurnEffects(services, line.session_id, line.index, LANE_BATCH)
    return runner.commit(turn, effects, response, chosen, hold).value
