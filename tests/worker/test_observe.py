"""The per-attempt report of the turn runner: log line fields, stored attempts, metric deltas."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from shared.errors import AuthError, Timeout
from tests.worker.conftest import KEY, answer, jpeg, make_world
from worker.turn import TurnRunner

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
