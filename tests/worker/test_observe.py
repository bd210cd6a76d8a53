"""The per-attempt report of the turn runner: log line fields, stored attempts, metric deltas,
and the quality counts of a turn whose numbers land in `quality.json`."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from shared import metrics
from shared.errors import AuthError, PermanentError, Timeout
from shared.keys import turn_key
from shared.status import quality_row
from shared.verdicts import AXES
from shared.waves import WaveLine
from tests.worker.conftest import KEY, World, answer, jpeg, make_world
from worker import measuring, observe
from worker.turn import Outcome, TurnRunner
from worker.wave_commit import line_back

TIMEOUT = Timeout(f"the API did not finish within its 35s deadline; key {KEY}")


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def turn_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "editqueue.turn" and hasattr(r, "outcome")]


def test_a_timed_out_attempt_is_logged_with_its_deadline_and_stored_with_its_latency(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world = make_world(tmp_path, [TIMEOUT])
    sid = world.session(["a room"])
    retried = value("editqueue_turns_total", outcome="retried")
    timeouts = value("editqueue_retries_total", reason="timeout")
    caplog.set_level(logging.INFO, "editqueue.turn")

    TurnRunner(world.services, owner="w1", rng=random.Random(1)).run(sid, 1, attempt=1)

    (record,) = turn_records(caplog)
    assert record.levelno == logging.WARNING
    assert (record.session_id, record.turn, record.attempt) == (sid, 1, 1)  # type: ignore[attr-defined]
    assert record.outcome == "retried" and record.reason == "timeout"  # type: ignore[attr-defined]
    assert "35s deadline" in record.getMessage() and KEY not in record.getMessage()
    assert record.retry_in_s is not None and record.latency_s is not None  # type: ignore[attr-defined]
    (stored,) = world.repo.snapshot(sid).attempts[1]
    assert stored.outcome == "retried" and stored.error is not None
    assert stored.error.kind == "timeout" and KEY not in stored.error.message
    assert value("editqueue_turns_total", outcome="retried") == retried + 1
    assert value("editqueue_retries_total", reason="timeout") == timeouts + 1


def test_a_committed_attempt_logs_tokens_and_cost_and_stores_no_attempt_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world = make_world(tmp_path, [answer(jpeg())])
    sid = world.session(["a room"])
    caplog.set_level(logging.INFO, "editqueue.turn")

    TurnRunner(world.services, owner="w1").run(sid, 1, attempt=1)

    (record,) = turn_records(caplog)
    assert record.outcome == "committed" and record.reason is None  # type: ignore[attr-defined]
    assert record.tokens_in == 100 and record.tokens_out == 1680  # type: ignore[attr-defined]
    result = world.repo.result(sid, 1)
    assert result is not None and record.cost_usd == round(result.cost_usd, 6)  # type: ignore[attr-defined]
    assert world.repo.snapshot(sid).attempts == {}


def test_a_permanent_failure_counts_the_failed_session_and_the_http_code(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world = make_world(tmp_path, [AuthError("check GEMINI_API_KEY", status=403)])
    sid = world.session(["a room"])
    model = "gemini-3.1-flash-image"
    before = value("editqueue_gemini_responses_total", model=model, code="403", kind="auth")
    sessions = value("editqueue_sessions_total", state="failed")
    caplog.set_level(logging.INFO, "editqueue.turn")

    TurnRunner(world.services, owner="w1").run(sid, 1, attempt=1)

    (record,) = turn_records(caplog)
    assert record.outcome == "failed" and record.http_code == "403"  # type: ignore[attr-defined]
    assert value("editqueue_gemini_responses_total", model=model, code="403", kind="auth") == (
        before + 1
    )
    assert value("editqueue_sessions_total", state="failed") == sessions + 1
    assert [a.outcome for a in world.repo.snapshot(sid).attempts[1]] == ["failed"]


# Turn 2 (sage to red) is deferred to turn 3: its numbers stay off the chain until turn 3 either
# commits them or ends without committing and writes `turns/2/quality.json`.
VERDICTS = "editqueue_quality_verdicts"


def verdict_counts() -> dict[tuple[str, str], float]:
    """Every (axis, verdict) count of the operator's verdict counter, this process."""
    return {
        (s.labels["axis"], s.labels["verdict"]): s.value
        for family in REGISTRY.collect()
        if family.name == VERDICTS
        for s in family.samples
        if s.name == f"{VERDICTS}_total"
    }


def quality_counts() -> dict[str, float]:
    """Observations of `editqueue_turn_quality` per signal, this process."""
    return {
        s.labels["signal"]: s.value
        for family in REGISTRY.collect()
        if family.name == "editqueue_turn_quality"
        for s in family.samples
        if s.name == "editqueue_turn_quality_count"
    }


def counted_since(
    before: tuple[dict[tuple[str, str], float], dict[str, float]],
) -> tuple[dict[tuple[str, str], float], dict[str, float]]:
    """What the verdict counter and the quality histogram counted since `before`."""
    verdicts, signals = verdict_counts(), quality_counts()
    return (
        {k: v - before[0].get(k, 0.0) for k, v in verdicts.items() if v != before[0].get(k, 0.0)},
        {k: v - before[1].get(k, 0.0) for k, v in signals.items() if v != before[1].get(k, 0.0)},
    )


def two_committed(tmp_path: Path, *third: object) -> tuple[World, str]:
    outcomes = [answer(jpeg((120, 140, 120))), answer(jpeg((230, 30, 30))), *third]
    world = make_world(tmp_path, outcomes)  # type: ignore[arg-type]
    sid = world.session(["a room", "Paint it red. Keep all else exactly.", "Add a lamp."])
    runner = TurnRunner(world.services, owner="w1", rng=random.Random(1))
    assert runner.run(sid, 1, attempt=1) is Outcome.COMMITTED
    assert runner.run(sid, 2, attempt=1) is Outcome.COMMITTED
    assert world.repo.snapshot(sid).results[2].metrics_deferred
    return world, sid


def expected_counts(
    world: World, sid: str
) -> tuple[dict[tuple[str, str], float], dict[str, float]]:
    """One count per axis of turn 2's row (the session's thresholds) and per stored signal."""
    snap = world.repo.snapshot(sid)
    row = quality_row(snap, 2, world.services.settings.quality)
    assert row is not None
    verdicts = {(axis, getattr(row, axis).verdict or "none"): 1.0 for axis in AXES}
    signals = dict.fromkeys((s for s, _ in metrics.quality_signals(snap.quality[2])), 1.0)
    return verdicts, signals


@pytest.mark.parametrize("how", ["run", "wave line"])
def test_a_next_turn_that_fails_counts_the_kept_turns_verdicts_once(
    tmp_path: Path, how: str
) -> None:
    world, sid = two_committed(tmp_path, PermanentError("refused for this test"))
    before = verdict_counts(), quality_counts()

    if how == "run":
        runner = TurnRunner(world.services, owner="w1", rng=random.Random(1))
        assert runner.run(sid, 3, attempt=1) is Outcome.FAILED
    else:
        line = WaveLine(key=f"{sid}:3:1", session_id=sid, index=3, attempt=1)
        assert line_back(world.services, line, PermanentError("400 for this test")) == "failed"

    assert world.store.exists(turn_key(sid, 2, "quality.json"))
    verdicts, signals = expected_counts(world, sid)
    assert len(verdicts) == 4 and {"ssim", "changed_fraction"} <= set(signals)
    assert counted_since(before) == (verdicts, signals)


def test_a_later_attempt_that_finds_quality_json_does_not_count_again(tmp_path: Path) -> None:
    world, sid = two_committed(tmp_path, Timeout("first"), Timeout("second"))
    runner = TurnRunner(world.services, owner="w1", rng=random.Random(1))
    stale = world.repo.snapshot(sid, through=3)  # read before quality.json existed
    before = verdict_counts(), quality_counts()

    assert runner.run(sid, 3, attempt=1) is Outcome.RETRY
    once = counted_since(before)
    assert once == expected_counts(world, sid)
    assert runner.run(sid, 3, attempt=2) is Outcome.RETRY  # its listing shows quality.json
    # An attempt that measured from an older listing loses the write-once race: no count.
    measuring.keep(world.services, stale, 2)

    assert world.gemini.calls == 4
    assert counted_since(before) == once


def test_a_failed_measurement_counts_nothing_and_fails_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world, sid = two_committed(tmp_path, PermanentError("refused for this test"))
    monkeypatch.setattr(measuring, "measure", lambda blobs, snap, index: {})
    before = verdict_counts(), quality_counts()

    runner = TurnRunner(world.services, owner="w1", rng=random.Random(1))
    assert runner.run(sid, 3, attempt=1) is Outcome.FAILED

    assert world.repo.snapshot(sid).quality[2] == {}  # kept, created by this attempt
    assert counted_since(before) == ({}, {})


def test_counting_that_breaks_still_keeps_the_numbers_and_the_outcome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    world, sid = two_committed(tmp_path, PermanentError("refused for this test"))

    def broken(*args: object) -> None:
        raise RuntimeError("the metrics registry broke")

    monkeypatch.setattr(observe, "record_quality", broken)
    runner = TurnRunner(world.services, owner="w1", rng=random.Random(1))

    assert runner.run(sid, 3, attempt=1) is Outcome.FAILED

    assert world.repo.snapshot(sid).metrics_of(2) is not None
    assert "could not record turn s1/2's quality" in caplog.text
