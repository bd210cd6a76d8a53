"""Batches as a whole: read every session at once, raise or lower the budget, export to a folder.

A batch is its manifest (`batches/{id}/batch.json`, see producer/manifest.py); its sessions are
read in parallel (one listing and a handful of small gets each), so a 1,000-session batch
reports in about a second.
"""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from producer import sessions
from producer.batch_status import (
    CSV_COLUMNS,
    BatchStatus,
    SessionSummary,
    WaveSummary,
    batch_status,
    commit_times,
    csv_row,
    missing_summary,
    session_summary,
    wave_summaries,
)
from producer.manifest import check_budget, checked_batch_id
from producer.parallel import parallel_map
from producer.read_cache import ImmutableReadCache
from producer.report import write_report
from shared.errors import UnknownSession
from shared.models import Tier
from shared.services import Services
from shared.session_records import BatchRecord
from shared.sessions import SessionRepository, SessionSnapshot
from shared.status import build_status
from shared.status_document import SessionStatus
from shared.waves import WaveRepository

SUMMARY_CSV = "summary.csv"
BATCH_JSON = "batch.json"
# A report holds its session's images while drawing the strip: a few at a time keeps memory flat.
EXPORT_THREADS = 4


@dataclass(frozen=True)
class SessionRead:
    """One session of the batch as read from the store (None when it is missing)."""

    session_id: str
    snap: SessionSnapshot | None
    status: SessionStatus | None

    def summary(self) -> SessionSummary:
        """The session's line in the batch status."""
        if self.snap is None or self.status is None:
            return missing_summary(self.session_id)
        return session_summary(self.snap, self.status)


def manifest(services: Services, batch_id: str) -> BatchRecord:
    """The batch's manifest; UnknownSession (exit 2) when there is no such batch."""
    return services.repo.batch(checked_batch_id(batch_id))


def read_sessions(
    services: Services, record: BatchRecord, *, desc: str | None = None
) -> list[SessionRead]:
    """Every session of the batch, read in parallel, in manifest order."""

    def read(sid: str) -> SessionRead:
        try:
            snap = services.repo.snapshot(sid)
        except UnknownSession:
            return SessionRead(sid, None, None)
        status = build_status(snap, services.coord.live(sid), services.settings.quality)
        return SessionRead(sid, snap, status)

    return parallel_map(read, record.session_ids, desc=desc)


def summarize(
    record: BatchRecord, reads: list[SessionRead], now: datetime, services: Services | None = None
) -> BatchStatus:
    """The batch status document from the sessions read (and the store's waves, if any)."""
    commits = [at for read in reads if read.snap is not None for at in commit_times(read.snap)]
    waves: list[WaveSummary] = []
    if services is not None and any(
        read.snap is not None and read.snap.record.tier is Tier.BATCH for read in reads
    ):
        waves = wave_summaries(record, WaveRepository(services.repo.store).all_waves())
    return batch_status(record, [read.summary() for read in reads], commits, now, waves)


def status(services: Services, batch_id: str) -> BatchStatus:
    """Where the batch is now: sessions by state, turns, rate, spend against budget, ETA."""
    record = manifest(services, batch_id)
    return summarize(record, read_sessions(services, record), datetime.now(UTC), services)


def for_polling(services: Services) -> Services:
    """The same services, reading write-once objects only once (for `status --batch --watch`)."""
    return dataclasses.replace(
        services, repo=SessionRepository(ImmutableReadCache(services.repo.store))
    )


def set_budget(services: Services, batch_id: str, budget_usd: float) -> tuple[BatchRecord, int]:
    """Rewrite the manifest with a new budget, then resume turns held back by the old one.

    Returns the new manifest and how many turns were enqueued.
    """
    check_budget(budget_usd, "--usd")
    record = manifest(services, batch_id).model_copy(update={"budget_usd": budget_usd})
    services.repo.save_batch(record)
    return record, sessions.reconcile(services, include_budget=True)


def write_summary_csv(summaries: list[SessionSummary], path: Path) -> None:
    """`summary.csv`: one row per session, in manifest order."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(csv_row(summary) for summary in summaries)


def export(
    services: Services, batch_id: str, out_dir: Path, *, show_progress: bool = False
) -> BatchStatus:
    """One report folder per session (`DIR/<session id>/`), `summary.csv` and `batch.json`."""
    record = manifest(services, batch_id)
    reads = read_sessions(services, record, desc="reading" if show_progress else None)
    out_dir.mkdir(parents=True, exist_ok=True)

    def write(read: SessionRead) -> None:
        if read.snap is not None and read.status is not None:
            write_report(read.status, read.snap, services.blobs.read, out_dir / read.session_id)

    parallel_map(write, reads, threads=EXPORT_THREADS, desc="exporting" if show_progress else None)
    doc = summarize(record, reads, datetime.now(UTC), services)
    write_summary_csv(doc.sessions, out_dir / SUMMARY_CSV)
    (out_dir / BATCH_JSON).write_text(doc.model_dump_json(indent=2) + "\n")
    return doc
