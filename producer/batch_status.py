"""A batch at a glance: sessions by state, turns done, throughput, spend against budget, ETA.

Pure functions over the sessions' snapshots and status documents, with `now` passed in.
Throughput comes from the results' `committed_at` times: the recent rate (the last
RATE_WINDOW_S, or since the batch was created if that is shorter) drives the ETA.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from shared.models import SessionState, TurnState
from shared.session_records import BatchRecord
from shared.sessions import SessionSnapshot
from shared.status_document import SessionStatus, TurnStatus
from shared.waves import WaveRecord

RATE_WINDOW_S = 300.0
MISSING = "missing"  # in the manifest but not in the store (a submit that failed half-way)
FINISHED = (TurnState.SUCCEEDED, TurnState.FAILED, TurnState.CANCELLED)
TERMINAL = (SessionState.COMPLETED, SessionState.FAILED, SessionState.CANCELLED)
SECONDS_PER_MINUTE = 60.0
CSV_COLUMNS = (
    "session_id",
    "state",
    "turns_done",
    "turns_total",
    "cost_usd",
    "wall_time_s",
    "failures",
    "drift_turns",
    "tier",
    "review",
)


class SessionSummary(BaseModel):
    """One session's line in the batch status and in `summary.csv`."""

    model_config = ConfigDict(frozen=True)

    session_id: str
    state: str  # a SessionState value, or "missing"
    tier: str = ""  # standard, flex or batch ("" when missing)
    turns_done: int = 0
    turns_total: int = 0
    turns_left: int = 0  # turns that will still run (none once the session is terminal)
    cost_usd: float = 0.0
    wall_time_s: float | None = None  # first request created -> last commit
    failures: list[str] = Field(default_factory=list)  # "kind:message" of each failed turn
    drift_turns: list[int] = Field(default_factory=list)  # turns whose drift verdict is weak
    review: list[str] = Field(default_factory=list)  # "3:drift,quality": turns with a weak verdict
    waiting: list[str] = Field(default_factory=list)  # why uncommitted turns wait


class WaveSummary(BaseModel):
    """One Batch API job that carried turns of this batch."""

    model_config = ConfigDict(frozen=True)

    wave_id: str
    job: str | None  # batches/{id}
    state: str  # preparing, sent, done
    job_state: str | None  # BATCH_STATE_* as last seen
    input: str  # inline or file
    lines: int  # turns of this batch in the wave
    outcomes: dict[str, int] = Field(default_factory=dict)  # committed, retry, failed, ...
    sent_at: datetime | None = None
    finished_at: datetime | None = None


class BatchStatus(BaseModel):
    """The document `editqueue status --batch ID --json` prints."""

    model_config = ConfigDict(frozen=True)

    batch_id: str
    created_at: datetime
    sessions_total: int
    sessions_by_state: dict[str, int]
    turns_done: int
    turns_failed: int
    turns_total: int
    turns_left: int
    turns_per_minute: float | None  # over the recent window
    turns_per_minute_overall: float | None  # batch creation -> last commit
    spend_usd: float
    budget_usd: float | None
    eta_s: float | None  # turns left / recent rate; None while nothing has finished lately
    waiting: dict[str, int]  # turns waiting, by reason (e.g. budget, rate_limit)
    drift_turns: int
    review_sessions: list[str]  # sessions with at least one weak quality verdict
    finished: bool
    sessions: list[SessionSummary]
    waves: list[WaveSummary] = Field(default_factory=list)  # batch-tier sessions' waves


def session_summary(snap: SessionSnapshot, status: SessionStatus) -> SessionSummary:
    """One session's summary from its snapshot (times) and status document (states, costs)."""
    turns = status.turns
    finished = sum(1 for t in turns if t.state in FINISHED)
    terminal = status.state in TERMINAL
    return SessionSummary(
        session_id=status.session_id,
        state=status.state.value,
        tier=status.tier.value,
        turns_done=sum(1 for t in turns if t.state is TurnState.SUCCEEDED),
        turns_total=len(turns),
        turns_left=0 if terminal else len(turns) - finished,
        cost_usd=status.cost_usd,
        wall_time_s=wall_time_s(snap),
        failures=[_failure(t) for t in turns if t.state is TurnState.FAILED],
        drift_turns=[t.index for t in turns if t.quality and t.quality.drift.verdict == "weak"],
        review=[review_entry(t) for t in turns if t.quality and t.quality.weak_axes()],
        waiting=[t.waiting_reason for t in turns if t.waiting_reason],
    )


def review_entry(turn: TurnStatus) -> str:
    """`3:drift,quality`: a turn and the axes whose verdict is weak."""
    axes = turn.quality.weak_axes() if turn.quality else []
    return f"{turn.index}:{','.join(axes)}"


def _failure(turn: TurnStatus) -> str:
    """`kind:message` of a failed turn."""
    if turn.error is None:
        return f"failed:turn {turn.index} failed"
    return f"{turn.error.kind}:{turn.error.message}"


def missing_summary(sid: str) -> SessionSummary:
    """A manifest entry with no session in the store."""
    return SessionSummary(session_id=sid, state=MISSING)


def wall_time_s(snap: SessionSnapshot) -> float | None:
    """Seconds from the first request's creation to the last commit (None before any commit)."""
    if not snap.results or not snap.requests:
        return None
    start = min(r.created_at for r in snap.requests.values())
    end = max(r.committed_at for r in snap.results.values())
    return round(max(0.0, (end - start).total_seconds()), 3)


def commit_times(snap: SessionSnapshot) -> list[datetime]:
    """When each of the session's turns was committed."""
    return [result.committed_at for result in snap.results.values()]


def recent_rate(commits: Sequence[datetime], start: datetime, now: datetime) -> float | None:
    """Turns per minute over the last RATE_WINDOW_S (or since `start`, if that is shorter)."""
    span_s = min(RATE_WINDOW_S, (now - start).total_seconds())
    if span_s <= 0:
        return None
    recent = sum(1 for at in commits if 0 <= (now - at).total_seconds() <= span_s)
    return recent * SECONDS_PER_MINUTE / span_s


def overall_rate(commits: Sequence[datetime], start: datetime) -> float | None:
    """Turns per minute from `start` to the last commit."""
    if not commits:
        return None
    span_s = (max(commits) - start).total_seconds()
    return len(commits) * SECONDS_PER_MINUTE / span_s if span_s > 0 else None


def eta_s(turns_left: int, rate_per_min: float | None) -> float | None:
    """Seconds until the remaining turns are done at `rate_per_min` (0 when none are left)."""
    if turns_left == 0:
        return 0.0
    if not rate_per_min:
        return None
    return round(turns_left * SECONDS_PER_MINUTE / rate_per_min, 1)


def _rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def wave_summaries(record: BatchRecord, waves: Iterable[WaveRecord]) -> list[WaveSummary]:
    """The waves that carried turns of this batch, oldest first."""
    members = set(record.session_ids)
    found = []
    for wave in sorted(waves, key=lambda w: w.created_at):
        lines = [line for line in wave.lines if line.session_id in members]
        if lines:
            found.append(
                WaveSummary(
                    wave_id=wave.wave_id,
                    job=wave.job_name,
                    state=wave.state,
                    job_state=wave.job_state,
                    input=wave.input,
                    lines=len(lines),
                    outcomes=dict(Counter(line.outcome for line in lines if line.outcome)),
                    sent_at=wave.sent_at,
                    finished_at=wave.finished_at,
                )
            )
    return found


def batch_status(
    record: BatchRecord,
    sessions: Sequence[SessionSummary],
    commits: Sequence[datetime],
    now: datetime,
    waves: Sequence[WaveSummary] = (),
) -> BatchStatus:
    """The batch document from every session's summary and every commit time."""
    turns_left = sum(s.turns_left for s in sessions)
    rate = recent_rate(commits, record.created_at, now)
    states = Counter(s.state for s in sessions)
    return BatchStatus(
        batch_id=record.batch_id,
        created_at=record.created_at,
        sessions_total=len(record.session_ids),
        sessions_by_state=dict(sorted(states.items())),
        turns_done=sum(s.turns_done for s in sessions),
        turns_failed=sum(len(s.failures) for s in sessions),
        turns_total=sum(s.turns_total for s in sessions),
        turns_left=turns_left,
        turns_per_minute=_rounded(rate),
        turns_per_minute_overall=_rounded(overall_rate(commits, record.created_at)),
        spend_usd=round(sum(s.cost_usd for s in sessions), 6),
        budget_usd=record.budget_usd,
        eta_s=eta_s(turns_left, rate),
        waiting=dict(Counter(reason for s in sessions for reason in s.waiting)),
        drift_turns=sum(len(s.drift_turns) for s in sessions),
        review_sessions=[s.session_id for s in sessions if s.review],
        finished=all(s.state in TERMINAL or s.state == MISSING for s in sessions),
        sessions=list(sessions),
        waves=list(waves),
    )


def csv_row(summary: SessionSummary) -> list[str]:
    """One `summary.csv` row, in CSV_COLUMNS order."""
    wall = "" if summary.wall_time_s is None else f"{summary.wall_time_s:.1f}"
    return [
        summary.session_id,
        summary.state,
        str(summary.turns_done),
        str(summary.turns_total),
        f"{summary.cost_usd:.4f}",
        wall,
        "; ".join(summary.failures),
        " ".join(str(n) for n in summary.drift_turns),
        summary.tier,
        " ".join(summary.review),
    ]
