"""The operator's view on the real stack: /metrics of workers (threads, prefork) and the API,
parsed with Prometheus' text parser and checked against the store; per-attempt JSON log lines;
a timed-out attempt's latency in `attempt_history`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.services import BIN, Stack, free_port, spawn, wait_until
from tests.integration.test_spine import status, wait_state

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    """Every sample of a /metrics endpoint, parsed by prometheus_client's text parser."""
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of `name` over the series whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def submit_lines(stack: Stack, specs: list[dict[str, Any]], *args: str) -> list[str]:
    path = stack.workdir / "batch.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in specs))
    out = stack.cli("submit", str(path), *args)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def turn_lines(log: str) -> list[dict[str, Any]]:
    """The JSON records of per-attempt turn log lines."""
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return [r for r in records if r.get("name") == "editqueue.turn" and "outcome" in r]


GOOD = {"image_size": "512", "turns": [{"prompt": "a room"}, {"prompt": "paint it sage green"}]}
BAD = {"image_size": "512", "turns": [{"prompt": "a room !fault=403"}]}


LAYOUTS = {
    "threads": ("--pool", "threads"),
    "prefork": ("--pool", "prefork"),
    "two-processes": ("--pool", "threads", "--processes", "2"),
}


@pytest.mark.parametrize(
    "layout",
    [
        pytest.param(name, marks=[pytest.mark.slow] if name == "two-processes" else [])
        for name in LAYOUTS
    ],
)
def test_worker_metrics_match_the_store_for_each_layout(stack: Stack, layout: str) -> None:
    """Injected: one session whose only call is refused with 403 (a permanent failure).

    Must hold: the one /metrics of `editqueue worker` (prefork: summed over the pool children;
    `--processes 2`: served by the parent, summed over both) counts every committed turn in the
    store, the cost the status documents add up to, the failure, and each JSON log line per
    attempt parses and carries its fields.
    """
    port = free_port()
    stack.extra_env.update(EDITQUEUE_METRICS_PORT=str(port), EDITQUEUE_LOG_FORMAT="json")
    worker = stack.start_worker(*LAYOUTS[layout], "--concurrency", "2")
    sids = submit_lines(stack, [GOOD, GOOD, GOOD, BAD], "--batch-id", "b1", "--budget-usd", "50")

    docs = [wait_state(stack, sid, {"completed", "failed"}) for sid in sids]

    committed = [t for d in docs for t in d["turns"] if t["state"] == "succeeded"]
    assert len(committed) == 6 and [d["state"] for d in docs][-1] == "failed"
    wait_until(
        lambda: total(scrape(port), "editqueue_turns_total", outcome="failed") == 1,
        10,
        "the failure counted",
    )
    samples = scrape(port)
    assert total(samples, "editqueue_turns_total", outcome="committed") == len(committed)
    cost = total(samples, "editqueue_cost_usd_total", tier="standard")
    spent = sum(d["cost_usd"] for d in docs)
    assert math.isclose(cost, spent, rel_tol=1e-6, abs_tol=1e-9)
    batch_cost = total(samples, "editqueue_batch_cost_usd_total", batch="b1")
    assert math.isclose(batch_cost, spent, rel_tol=1e-6, abs_tol=1e-9)
    remaining = total(samples, "editqueue_budget_remaining_usd", batch="b1")
    assert math.isclose(remaining, 50 - spent, rel_tol=1e-6)
    assert total(samples, "editqueue_budget_limit_usd", batch="b1") == 50
    assert total(samples, "editqueue_gemini_responses_total", code="403", kind="auth") == 1
    assert total(samples, "editqueue_api_call_duration_seconds_count") == 7
    assert total(samples, "editqueue_images_total", image_size="512") == 6
    assert total(samples, "editqueue_tokens_total", direction="output", modality="image") > 0
    assert total(samples, "editqueue_turn_quality_count", signal="ssim") == 3
    assert total(samples, "editqueue_quality_verdicts_total", axis="drift") == 3
    assert total(samples, "editqueue_sessions_total", state="completed") == 3
    assert total(samples, "editqueue_api_calls_in_flight") == 0
    assert total(samples, "editqueue_s3_requests_total", verb="PutObject") >= 6

    lines = turn_lines(worker.output())
    outcomes = sorted(r["outcome"] for r in lines if r["outcome"] in ("committed", "failed"))
    assert outcomes == ["committed"] * 6 + ["failed"]
    failed = next(r for r in lines if r["outcome"] == "failed")
    assert failed["reason"] == "auth" and failed["http_code"] == "403" and failed["turn"] == 1
    assert failed["session_id"] == sids[-1] and failed["timestamp"].startswith("20")
    ok = next(r for r in lines if r["outcome"] == "committed")
    assert ok["latency_s"] > 0 and ok["tokens_out"] > 0 and ok["cost_usd"] > 0
    assert ok["attempt"] == 1 and ok["reason"] is None


def test_a_timed_out_attempt_keeps_its_latency_and_the_log_says_the_deadline(
    stack: Stack,
) -> None:
    """Injected: the first call hangs past the 1 s deadline; the retry succeeds."""
    stack.extra_env.update(EDITQUEUE_API_TIMEOUT_S="1")
    worker = stack.start_worker()
    (sid,) = submit_lines(stack, [{"image_size": "512", "turns": [{"prompt": "x !fault=hangx1"}]}])

    doc = wait_state(stack, sid, {"completed", "failed"})

    history = doc["turns"][0]["attempt_history"]
    assert [(a["attempt"], a["outcome"]) for a in history] == [(1, "retried"), (2, "committed")]
    assert history[0]["latency_s"] >= 1.0 and history[0]["error"]["kind"] == "timeout"
    assert "1s deadline" in history[0]["error"]["message"]
    assert f"turn {sid}/1 attempt 1: outcome=retried" in worker.output()
    assert "1s deadline" in worker.output()


def test_the_api_serves_its_own_metrics_port(stack: Stack, tmp_path: Path) -> None:
    metrics_port, api_port = free_port(), free_port()
    stack.extra_env.update(EDITQUEUE_METRICS_PORT=str(metrics_port))
    log = tmp_path / "api.log"
    proc = spawn([str(BIN / "editqueue"), "api", "--port", str(api_port)], log, env=stack.env())
    stack.workers.append(proc)  # stopped with the stack
    url = f"http://127.0.0.1:{api_port}"
    wait_until(lambda: requests.get(f"{url}/healthz", timeout=1).ok, 30, "editqueue api")

    created = requests.post(f"{url}/v1/sessions", json=GOOD, timeout=30)

    assert created.status_code in (200, 201), created.text
    samples = scrape(metrics_port)
    assert total(samples, "editqueue_sessions_total", state="submitted") == 1
    assert total(samples, "editqueue_s3_requests_total", verb="PutObject") >= 3
    assert status(stack, created.json()["session_id"])["state"] in ("queued", "running")


def test_flower_shows_the_turns_from_task_events(stack: Stack, tmp_path: Path) -> None:
    """`editqueue flower` on the stack's broker lists the run_turn tasks the worker ran."""
    port = free_port()
    env = {**stack.env(), "FLOWER_UNAUTHENTICATED_API": "true"}
    argv = [str(BIN / "editqueue"), "flower", f"--port={port}", "--address=127.0.0.1"]
    stack.workers.append(proc := spawn(argv, tmp_path / "flower.log", env=env))
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: requests.get(f"{url}/healthcheck", timeout=1).ok, 30, "flower")
    stack.start_worker()
    (sid,) = submit_lines(stack, [GOOD])
    wait_state(stack, sid, {"completed", "failed"})

    def seen() -> set[str]:
        tasks = requests.get(f"{url}/api/tasks", timeout=5).json()
        return {t["args"] for t in tasks.values() if t["name"] == "editqueue.run_turn"}

    wait_until(lambda: len(seen()) == 2, 15, f"flower lists both turns\n{proc.output()}")
    assert all(sid in args for args in seen())


def test_queue_depth_counts_turns_in_every_priority_list(stack: Stack) -> None:
    """First turns wait in `editqueue.turns:8`, beside the base list celery-exporter reads."""
    port = free_port()
    stack.extra_env.update(EDITQUEUE_METRICS_PORT=str(port))
    stack.start_worker("-Q", "editqueue.elsewhere")  # serves /metrics, consumes no turn
    submit_lines(stack, [GOOD, GOOD, GOOD])

    samples = scrape(port)

    assert total(samples, "editqueue_queue_depth", queue="editqueue.turns") == 3
    assert total(samples, "editqueue_queue_depth", queue="editqueue.webhooks") == 0
