"""What `editqueue status --batch ID` prints for people (plain text)."""

from __future__ import annotations

from datetime import datetime

from producer.batch_status import RATE_WINDOW_S, BatchStatus, WaveSummary

SECONDS_PER_HOUR = 3600
SECONDS_PER_MINUTE = 60
REVIEW_LISTED = 20  # sessions named in the plain view; summary.csv has them all


def duration(seconds: float | None) -> str:
    """`2h05m`, `12m40s`, `35s`, or `unknown`."""
    if seconds is None:
        return "unknown"
    whole = round(seconds)
    hours, rest = divmod(whole, SECONDS_PER_HOUR)
    minutes, secs = divmod(rest, SECONDS_PER_MINUTE)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _spend(doc: BatchStatus) -> str:
    if doc.budget_usd is None:
        return f"${doc.spend_usd:.2f} (no budget)"
    share = f" ({doc.spend_usd / doc.budget_usd:.0%})" if doc.budget_usd > 0 else ""
    return f"${doc.spend_usd:.2f} of ${doc.budget_usd:.2f} budget{share}"


def _clock(at: datetime | None) -> str:
    return "-" if at is None else f"{at:%H:%M:%S}"


def wave_line(wave: WaveSummary) -> str:
    """One batch wave: its job, state, lines and times."""
    state = (wave.job_state or wave.state).removeprefix("BATCH_STATE_")
    outcomes = ", ".join(f"{name} {n}" for name, n in sorted(wave.outcomes.items()))
    return (
        f"wave     {wave.job or wave.wave_id}  {state}  {wave.lines} lines ({wave.input})  "
        f"sent {_clock(wave.sent_at)}  finished {_clock(wave.finished_at)}"
        + (f"  [{outcomes}]" if outcomes else "")
    )


def batch_view(doc: BatchStatus) -> str:
    """The batch in a few lines: sessions, turns and rate, spend, ETA, waits and drift."""
    states = ", ".join(f"{state} {n}" for state, n in doc.sessions_by_state.items())
    failed = f", {doc.turns_failed} failed" if doc.turns_failed else ""
    eta = "done" if doc.finished else f"{duration(doc.eta_s)} ({doc.turns_left} turns left)"
    lines = [
        f"batch {doc.batch_id}  {doc.sessions_total} sessions: {states or 'none'}",
        f"turns    {doc.turns_done}/{doc.turns_total} done{failed}",
        f"rate     {_rate(doc.turns_per_minute)} turns/min (last {RATE_WINDOW_S / 60:g} min), "
        f"{_rate(doc.turns_per_minute_overall)} overall",
        f"spend    {_spend(doc)}",
        f"eta      {eta}",
    ]
    if doc.waiting:
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(doc.waiting.items()))
        lines.append(f"waiting  {reasons}")
    for wave in doc.waves:
        lines.append(wave_line(wave))
    if doc.drift_turns:
        lines.append(f"drift    {doc.drift_turns} turn(s) flagged (see summary.csv after export)")
    lines += _review(doc)
    return "\n".join(lines)


def _review(doc: BatchStatus) -> list[str]:
    """The sessions with a weak quality verdict, by id and turn (at most REVIEW_LISTED)."""
    if not doc.review_sessions:
        return []
    turns = {s.session_id: " ".join(s.review) for s in doc.sessions}
    listed = [f"  {sid}  turn {turns.get(sid, '')}" for sid in doc.review_sessions[:REVIEW_LISTED]]
    more = len(doc.review_sessions) - REVIEW_LISTED
    tail = [f"  ... and {more} more (review column of summary.csv)"] if more > 0 else []
    return [f"review   {len(doc.review_sessions)} session(s) need a look:", *listed, *tail]
