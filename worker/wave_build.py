"""Gathering a wave: which due batch-tier turns go, their budget holds, and the job's body.

A turn goes when it is still due (requested, predecessor committed, not committed, not failed,
session not cancelled) and not already in a wave in flight; otherwise its due mark is dropped
(a cancelled session's turns never reach a wave). Each line reserves its price at the batch tier
before anything is sent; a refused one is parked for budget as a synchronous turn would be.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from shared.broker import LANE_BATCH
from shared.catalog import profile_for, turn_cost_usd
from shared.errors import OverBudget, PermanentError
from shared.history import check_fits, effective_size, estimate_tokens, request_payload
from shared.sessions import SessionSnapshot
from shared.status import current_park
from shared.waves import line_key
from worker.effects import TurnEffects
from worker.measuring import keep as keep_quality
from worker.request_body import StreamingBody
from worker.spend import BudgetHold, budget_scopes
from worker.turn import Turn, TurnRunner
from worker.wiring import WorkerServices


@dataclass
class Prepared:
    """One turn ready to go into a wave."""

    snap: SessionSnapshot
    index: int
    attempt: int
    body: StreamingBody
    hold: BudgetHold

    @property
    def key(self) -> str:
        """The line's key: `session:turn:attempt`."""
        return line_key(self.snap.record.session_id, self.index, self.attempt)

    @property
    def revision(self) -> int:
        """The request revision this line answers."""
        return self.snap.requests[self.index].revision


def _still_due(snap: SessionSnapshot, index: int) -> bool:
    request = snap.requests.get(index)
    failure = snap.failures.get(index)
    return not (
        snap.cancelled
        or request is None
        or index in snap.results
        or (index > 1 and index - 1 not in snap.results)
        or (failure is not None and failure.request_revision == request.revision)
        or current_park(snap, index) is not None
    )


def prepare(services: WorkerServices, sid: str, index: int, attempt: int) -> Prepared | None:
    """The turn as a wave line with its budget held, or None (dropped, failed or parked)."""
    snap = services.repo.snapshot(sid, through=index)
    effects = TurnEffects(services, sid, index, LANE_BATCH)
    if not _still_due(snap, index):
        services.coord.drop_batch_due(sid, index)
        if snap.cancelled:
            effects.done()
            keep_quality(services, snap, index - 1)  # turn n will not keep turn n-1's numbers
        return None
    record, request = snap.record, snap.requests[index]
    profile = profile_for(record.model)
    body = StreamingBody(
        request_payload(record, snap.requests, snap.results, index), services.blobs.path
    )
    key = line_key(sid, index, attempt)
    try:
        tokens = estimate_tokens(profile, record, snap.requests, index)
        check_fits(profile, tokens, body.content_length, index, sid)
        size = effective_size(record, request)[1]
        overrides = services.settings.price_overrides
        usage = {"promptTokenCount": tokens}
        price = turn_cost_usd(profile, size, usage, overrides, 1, LANE_BATCH)
        hold = BudgetHold(services.ledger, key, budget_scopes(services.repo, snap))
        refused = hold.reserve(price)
        if refused is not None:
            raise OverBudget(f"budget {refused.name} of ${refused.limit_usd:.2f} reached")
    except (PermanentError, OverBudget) as exc:  # fails, or parks for budget, as the map says
        services.coord.drop_batch_due(sid, index)
        turn = Turn(sid, index, attempt, snap, revision=request.revision, in_call=True)
        TurnRunner(services, owner=key, lane=LANE_BATCH).carry_out(exc, turn, effects)
        return None
    return Prepared(snap, index, attempt, body, hold)


def inline_body(wave_id: str, lines: list[Prepared]) -> Iterator[bytes]:
    """The create call's body with every request inline (each keyed in its metadata)."""
    yield b'{"batch":{"displayName":"' + wave_id.encode() + b'","inputConfig":{"requests":'
    yield b'{"requests":['
    for n, line in enumerate(lines):
        yield b"," if n else b""
        yield b'{"request":'
        yield from line.body.chunks()
        yield b',"metadata":{"key":"' + line.key.encode() + b'"}}'
    yield b"]}}}}"


def write_jsonl(path: Path, lines: list[Prepared]) -> None:
    """The JSONL input file: one `{"key", "request"}` per line."""
    with path.open("wb") as handle:
        for line in lines:
            handle.write(b'{"key":"' + line.key.encode() + b'","request":')
            for chunk in line.body.chunks():
                handle.write(chunk)
            handle.write(b"}\n")


def file_body(wave_id: str, file_name: str) -> bytes:
    """The create call's body for a JSONL file job."""
    return (
        b'{"batch":{"displayName":"'
        + wave_id.encode()
        + b'","inputConfig":{"fileName":"'
        + file_name.encode()
        + b'"}}}'
    )


def inline_size(lines: list[Prepared]) -> int:
    """Bytes of an inline create body for these lines (approximately, from the bodies)."""
    return sum(line.body.content_length + len(line.key) + 40 for line in lines) + 120
