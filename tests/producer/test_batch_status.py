"""The batch document's arithmetic: rates from commit times, ETA, spend, drift, CSV rows."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from producer.batch_status import (
    RATE_WINDOW_S,
    SessionSummary,
    batch_status,
    csv_row,
    eta_s,
    overall_rate,
    recent_rate,
)
from producer.batch_view import batch_view, duration
from shared.session_records import BatchRecord
from tests.producer.conftest import NOW

START = NOW
RECORD = BatchRecord(batch_id="b1", session_ids=["s1", "s2"], budget_usd=2.0, created_at=START)


def minutes(*values: float) -> list[datetime]:
    return [START + timedelta(minutes=v) for v in values]


def test_the_recent_rate_counts_commits_in_the_last_window_only() -> None:
    now = START + timedelta(minutes=20)
    commits = minutes(1, 2, 3, 16, 17, 18, 19, 19.5)  # 5 in the last five minutes

    assert recent_rate(commits, START, now) == pytest.approx(5 / (RATE_WINDOW_S / 60))


def test_early_in_a_batch_the_rate_is_over_the_time_since_it_started() -> None:
    now = START + timedelta(minutes=2)

    assert recent_rate(minutes(0.5, 1, 1.5, 2), START, now) == pytest.approx(2.0)


def test_the_overall_rate_runs_from_creation_to_the_last_commit() -> None:
    assert overall_rate(minutes(5, 10), START) == pytest.approx(0.2)
    assert overall_rate([], START) is None


def test_eta_is_turns_left_over_the_rate_and_unknown_without_progress() -> None:
    assert eta_s(30, 10.0) == 180.0
    assert eta_s(30, 0.0) is None
    assert eta_s(0, None) == 0.0


def test_the_batch_document_sums_sessions_and_derives_the_eta() -> None:
    sessions = [
        SessionSummary(
            session_id="s1",
            state="completed",
            turns_done=3,
            turns_total=3,
            cost_usd=0.3,
            drift_turns=[2],
        ),
        SessionSummary(
            session_id="s2",
            state="running",
            turns_done=1,
            turns_total=5,
            turns_left=4,
            cost_usd=0.1,
            waiting=["budget", "budget"],
        ),
    ]
    now = START + timedelta(minutes=4)

    doc = batch_status(RECORD, sessions, minutes(1, 2, 3, 4), now)

    assert doc.sessions_by_state == {"completed": 1, "running": 1}
    assert (doc.turns_done, doc.turns_total, doc.turns_left) == (4, 8, 4)
    assert doc.turns_per_minute == 1.0 and doc.eta_s == 240.0
    assert doc.spend_usd == pytest.approx(0.4) and doc.budget_usd == 2.0
    assert doc.waiting == {"budget": 2} and doc.drift_turns == 1
    assert doc.finished is False
    view = batch_view(doc)
    assert "eta      4m00s (4 turns left)" in view and "waiting  budget 2" in view


def test_a_csv_row_has_every_column_in_order() -> None:
    summary = SessionSummary(
        session_id="s1",
        state="failed",
        turns_done=1,
        turns_total=2,
        cost_usd=0.067,
        wall_time_s=41.25,
        failures=["blocked:prompt blocked"],
        drift_turns=[3, 4],
        tier="batch",
        review=["3:drift", "4:drift,quality"],
    )

    assert csv_row(summary) == [
        "s1",
        "failed",
        "1",
        "2",
        "0.0670",
        "41.2",
        "blocked:prompt blocked",
        "3 4",
        "batch",
        "3:drift 4:drift,quality",
    ]


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "unknown"), (35, "35s"), (760, "12m40s"), (7500, "2h05m")]
)
def test_durations_read_like_a_clock(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text
