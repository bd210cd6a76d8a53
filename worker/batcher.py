"""The batcher: batch-tier turns go to Google's Batch API in waves, one job per model.

Run by the workers' sweep, one at a time across the fleet (a Redis lease). Each pass:
1. follows every open wave (the store lists them): polls its job with backoff; once the job ended,
   commits its lines (worker/wave_commit.py) or, for an expired/failed/cancelled job, puts them
   back for the next wave; then marks the wave done;
2. sends the turns that are due (once no new one arrived for `batch_gather_s`) as one job per
   model: inline when small, else a JSONL file through the Files API; keys `session:turn:attempt`.
A wave is written to the store before its job is created; a wave found `preparing` (the sender
died, or the create call failed) is looked up by its display name and adopted, or its lines go
back.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.coordination import LiveTurn
from shared.errors import PermanentError, ServerError, TransientError
from shared.keys import BATCHER_LEASE
from shared.models import TurnState
from shared.waves import WaveLine, WaveRecord, WaveRepository
from worker.gemini_batch import BatchApi
from worker.wave_build import (
    Prepared,
    file_body,
    inline_body,
    inline_size,
    prepare,
    write_jsonl,
)
from worker.wave_commit import commit_line, line_back
from worker.wave_results import job_lines
from worker.wiring import WorkerServices

log = logging.getLogger("editqueue.batcher")
BATCHER_LEASE_S = 900.0
COMMIT_THREADS = 8  # lines of a finished wave committed at once (each is a few store writes)
ENDED_BAD = frozenset({"BATCH_STATE_FAILED", "BATCH_STATE_EXPIRED", "BATCH_STATE_CANCELLED"})
SUCCEEDED = "BATCH_STATE_SUCCEEDED"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Batcher:
    """One process's batcher; its poll schedule lives in memory (a restart polls sooner)."""

    services: WorkerServices
    api: BatchApi
    owner: str = field(default_factory=lambda: f"batcher-{uuid.uuid4().hex[:12]}")
    next_poll: dict[str, float] = field(default_factory=dict)
    polls: dict[str, int] = field(default_factory=dict)

    @property
    def waves(self) -> WaveRepository:
        """The store's waves."""
        return WaveRepository(self.services.repo.store)

    def run_once(self, now: float) -> int:
        """One pass if this process holds the lease; returns how many waves were sent."""
        coord = self.services.coord
        if not coord.acquire_lease(BATCHER_LEASE, self.owner, BATCHER_LEASE_S):
            return 0
        try:
            for wave in self.waves.open_waves():
                self.follow(wave, now)
            return self.send_due(now)
        finally:
            coord.release_lease(BATCHER_LEASE, self.owner)

    # -- sending ---------------------------------------------------------------------------

    def send_due(self, now: float) -> int:
        """Send the due turns as one wave per model, once they stopped arriving."""
        due = self.services.coord.batch_due()
        if not due:
            return 0
        settings = self.services.settings
        newest = max(at for _, at in due.values())
        oldest = min(at for _, at in due.values())
        quiet = now - newest >= settings.batch_gather_s
        if not quiet and now - oldest < settings.batch_gather_s * 10:
            return 0
        in_flight = {(ln.session_id, ln.index) for w in self.waves.open_waves() for ln in w.lines}
        by_model: dict[str, list[Prepared]] = defaultdict(list)
        for (sid, index), (attempt, at) in sorted(due.items(), key=lambda item: item[1][1]):
            if at > now or (sid, index) in in_flight:
                continue
            prepared = prepare(self.services, sid, index, attempt)
            if prepared is not None:
                by_model[prepared.snap.record.model].append(prepared)
        sent = 0
        for model, lines in by_model.items():
            for start in range(0, len(lines), settings.batch_max_lines):
                self.send(model, lines[start : start + settings.batch_max_lines], now)
                sent += 1
        return sent

    def send(self, model: str, lines: list[Prepared], now: float) -> WaveRecord:
        """Record the wave, take its turns off the due list, then create the job."""
        wave_id = f"w{datetime.now(UTC):%Y%m%d%H%M%S}-{uuid.uuid4().hex[:8]}"
        inline = inline_size(lines) <= self.services.settings.batch_inline_max_bytes
        wave = WaveRecord(
            wave_id=wave_id,
            model=model,
            state="preparing",
            input="inline" if inline else "file",
            lines=[self._line(p) for p in lines],
            created_at=_now(),
        )
        self.waves.save(wave)
        for p in lines:
            self._mark_running(p, wave_id)
        try:
            wave = self._create(wave, lines, inline)
        except TransientError as exc:
            log.warning("wave %s not sent (%s); it is looked up or resent next pass", wave_id, exc)
        except PermanentError as exc:
            self._close(wave, [line_back(self.services, ln, exc) for ln in wave.lines])
        self.next_poll[wave_id] = now + self.services.settings.batch_poll_s
        return wave

    def _line(self, p: Prepared) -> WaveLine:
        return WaveLine(
            key=p.key,
            session_id=p.snap.record.session_id,
            index=p.index,
            attempt=p.attempt,
            revision=p.revision,
        )

    def _mark_running(self, p: Prepared, wave_id: str) -> None:
        sid = p.snap.record.session_id
        coord = self.services.coord
        coord.drop_batch_due(sid, p.index)
        live = LiveTurn(
            state=TurnState.RUNNING,
            attempts=p.attempt,
            reason=f"batch wave {wave_id}",
            updated_at=_now().timestamp(),
        )
        coord.set_live(sid, p.index, live)

    def _create(self, wave: WaveRecord, lines: list[Prepared], inline: bool) -> WaveRecord:
        file_name = None
        if inline:
            body = b"".join(inline_body(wave.wave_id, lines))
        else:
            with tempfile.TemporaryDirectory(prefix="editqueue-wave-") as tmp:
                path = Path(tmp) / f"{wave.wave_id}.jsonl"
                write_jsonl(path, lines)
                file_name = self.api.upload_jsonl(path, wave.wave_id)
            body = file_body(wave.wave_id, file_name)
        op = self.api.create(wave.model, body)
        return self._sent(wave, op, file_name)

    def _sent(self, wave: WaveRecord, op: dict[str, Any], file_name: str | None) -> WaveRecord:
        meta = op.get("metadata") or {}
        update = {
            "state": "sent",
            "job_name": str(op.get("name")),
            "job_state": meta.get("state"),
            "file_name": file_name,
            "sent_at": _now(),
        }
        wave = wave.model_copy(update=update)
        self.waves.save(wave)
        log.info("wave %s sent: %s, %d line(s)", wave.wave_id, wave.job_name, len(wave.lines))
        return wave

    # -- following -------------------------------------------------------------------------

    def follow(self, wave: WaveRecord, now: float) -> None:
        """Poll the wave's job when due; settle the wave once the job ended."""
        if wave.state == "preparing":
            self._recover(wave, now)
            return
        if self.next_poll.get(wave.wave_id, 0.0) > now or wave.job_name is None:
            return
        try:
            op = self.api.get(wave.job_name)
        except TransientError as exc:
            log.warning("wave %s: poll failed (%s)", wave.wave_id, exc)
            self._schedule(wave.wave_id, now)
            return
        state = str((op.get("metadata") or {}).get("state"))
        if state == SUCCEEDED:
            self._finish(wave, op)
        elif state in ENDED_BAD:
            error = ServerError(f"batch job {wave.job_name} ended {state}; the turn goes again")
            self._close(wave, [line_back(self.services, ln, error) for ln in wave.lines], state)
        else:
            if state != wave.job_state:
                self.waves.save(wave.model_copy(update={"job_state": state}))
            self._schedule(wave.wave_id, now)

    def _schedule(self, wave_id: str, now: float) -> None:
        settings = self.services.settings
        polls = self.polls.get(wave_id, 0) + 1
        self.polls[wave_id] = polls
        wait = min(settings.batch_poll_max_s, settings.batch_poll_s * 2 ** min(polls, 16) / 2)
        self.next_poll[wave_id] = now + wait

    def _recover(self, wave: WaveRecord, now: float) -> None:
        try:
            op = self.api.find(wave.wave_id)
        except TransientError as exc:
            log.warning("wave %s: cannot look its job up yet (%s)", wave.wave_id, exc)
            return
        if op is not None:
            self._sent(wave, op, wave.file_name)
            self._schedule(wave.wave_id, now)
            return
        error = ServerError(f"wave {wave.wave_id} was never sent; the turn goes again")
        self._close(wave, [line_back(self.services, ln, error) for ln in wave.lines], "unsent")

    def _finish(self, wave: WaveRecord, op: dict[str, Any]) -> None:
        sent = wave.sent_at or wave.created_at
        latency_s = max(0.0, (_now() - sent).total_seconds())
        keys = {ln.key: ln for ln in wave.lines}
        outcomes: dict[str, str] = {}
        chunk: list[tuple[WaveLine, Any]] = []
        with (
            tempfile.TemporaryDirectory(prefix="editqueue-wave-") as tmp,
            ThreadPoolExecutor(COMMIT_THREADS) as pool,
        ):
            for key, result in job_lines(self.api, op, Path(tmp)):
                line = keys.get(key)
                if line is None or key in outcomes or any(key == ln.key for ln, _ in chunk):
                    continue
                chunk.append((line, result))
                if len(chunk) >= COMMIT_THREADS * 2:  # a few lines in memory at a time
                    outcomes.update(self._commit_all(pool, chunk, latency_s))
                    chunk = []
            outcomes.update(self._commit_all(pool, chunk, latency_s))
        missing = ServerError("the batch job returned no result for this line")
        for key, line in keys.items():
            if key not in outcomes:
                outcomes[key] = line_back(self.services, line, missing)
        self._close(wave, [outcomes[ln.key] for ln in wave.lines], SUCCEEDED)

    def _commit_all(
        self, pool: ThreadPoolExecutor, lines: list[tuple[WaveLine, Any]], latency_s: float
    ) -> dict[str, str]:
        def one(item: tuple[WaveLine, Any]) -> str:
            return commit_line(self.services, item[0], item[1], latency_s)

        return {
            line.key: outcome
            for (line, _), outcome in zip(lines, pool.map(one, lines), strict=True)
        }

    def _close(self, wave: WaveRecord, outcomes: list[str], job_state: str | None = None) -> None:
        lines = [
            ln.model_copy(update={"outcome": o}) for ln, o in zip(wave.lines, outcomes, strict=True)
        ]
        done = wave.model_copy(
            update={
                "state": "done",
                "lines": lines,
                "finished_at": _now(),
                "job_state": job_state or wave.job_state,
            }
        )
        self.waves.save(done)
        self.next_poll.pop(wave.wave_id, None)
        self.polls.pop(wave.wave_id, None)
        log.info("wave %s done (%s): %s", wave.wave_id, done.job_state, _tally(outcomes))


def _tally(outcomes: list[str]) -> str:
    counts: dict[str, int] = defaultdict(int)
    for outcome in outcomes:
        counts[outcome] += 1
    return ", ".join(f"{n} {name}" for name, n in sorted(counts.items()))
