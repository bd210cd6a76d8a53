"""Batch waves end to end: real Redis, moto's S3, the emulator's Batch API, worker processes."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from tests.integration.services import Stack, start_emulator, wait_until
from tests.integration.test_faults import s3_client

pytestmark = pytest.mark.integration

TURNS = ('{"prompt": "an empty room"}', '{"prompt": "sage walls"}', '{"prompt": "evening light"}')


def batch_env(stack: Stack) -> None:
    stack.extra_env.update(
        EDITQUEUE_SWEEP_INTERVAL_S="0.3",
        EDITQUEUE_BATCH_GATHER_S="0.3",
        EDITQUEUE_BATCH_POLL_S="0.3",
        EDITQUEUE_BATCH_POLL_MAX_S="0.6",
    )


@pytest.fixture
def batch_emulator(services_dir: Path) -> Callable[..., str]:
    procs = []

    def start(*flags: str) -> str:
        proc, url = start_emulator(services_dir, "--seed", "3", *flags)
        procs.append(proc)
        return url

    yield start
    for proc in procs:
        proc.kill()


def write_sessions(path: Path, count: int, turns: tuple[str, ...], special: str = "") -> Path:
    line = f'{{"image_size": "512", "aspect_ratio": "1:1", "turns": [{", ".join(turns)}]}}\n'
    path.write_text(line * count + special)
    return path


def submit_batch(stack: Stack, spec: Path) -> tuple[str, list[str]]:
    out = stack.cli("submit", str(spec), "--tier", "batch")
    assert out.returncode == 0, out.stderr
    found = re.search(r"batch (\S+): \d+ session", out.stderr)
    assert found, out.stderr
    return found.group(1), out.stdout.split()


def batch_doc(stack: Stack, batch_id: str) -> dict[str, Any]:
    out = stack.cli("status", "--batch", batch_id, "--json")
    assert out.returncode in (0, 1), out.stderr
    return json.loads(out.stdout)


def wait_finished(stack: Stack, batch_id: str, timeout_s: float = 90) -> dict[str, Any]:
    doc: dict[str, Any] = {}

    def finished() -> bool:
        time.sleep(0.5)  # each look is a CLI process: do not starve the worker of CPU
        doc.update(batch_doc(stack, batch_id))
        return bool(doc["finished"]) and all(w["state"] == "done" for w in doc["waves"])

    wait_until(finished, timeout_s, f"batch {batch_id}")
    return doc


def emulator_stats(url: str) -> dict[str, Any]:
    return requests.get(f"{url}/emulator/stats", timeout=5).json()


def result_keys(stack: Stack) -> list[str]:
    s3 = s3_client(stack.s3_url)
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=stack.bucket, Prefix=f"{stack.prefix}/sessions/"
    )
    return [
        o["Key"]
        for page in pages
        for o in page.get("Contents", [])
        if o["Key"].endswith("result.json")
    ]


def test_thirty_batch_sessions_of_three_turns_finish_in_three_waves_without_generate_content(
    stack: Stack, batch_emulator: Callable[..., str], tmp_path: Path
) -> None:
    stack.emulator_url = batch_emulator("--batch-turnaround-s", "0.5")
    batch_env(stack)
    stack.start_worker()
    batch_id, sids = submit_batch(stack, write_sessions(tmp_path / "o.jsonl", 30, TURNS))

    doc = wait_finished(stack, batch_id)

    assert doc["sessions_by_state"] == {"completed": 30} and doc["turns_done"] == 90
    waves = doc["waves"]
    assert [w["lines"] for w in waves] == [30, 30, 30]
    assert all(w["job_state"] == "BATCH_STATE_SUCCEEDED" for w in waves)
    assert all(w["outcomes"] == {"committed": 30} for w in waves)
    assert {s["tier"] for s in doc["sessions"]} == {"batch"}
    stats = emulator_stats(stack.emulator_url)
    assert stats["total_calls"] == 0  # no generateContent call at all
    assert stats["batch"]["lines_run"] == 90  # every turn was sent once
    assert len(result_keys(stack)) == 90
    one = json.loads(stack.cli("status", sids[0], "--json").stdout)
    assert {t["tier"] for t in one["turns"]} == {"batch"}
    view = stack.cli("status", "--batch", batch_id).stdout
    assert view.count("wave     batches/") == 3 and "SUCCEEDED  30 lines (inline)" in view


def test_an_expired_jobs_lines_run_in_the_next_wave_and_a_permanent_line_fails_one_turn(
    stack: Stack, batch_emulator: Callable[..., str], tmp_path: Path
) -> None:
    stack.emulator_url = batch_emulator("--batch-turnaround-s", "0.5", "--batch-expire-jobs", "1")
    batch_env(stack)
    stack.start_worker()
    bad = '{"image_size": "512", "turns": [{"prompt": "a room"}, {"prompt": "x !fault=400"}]}\n'
    spec = write_sessions(tmp_path / "o.jsonl", 3, TURNS[:2], special=bad)
    batch_id, sids = submit_batch(stack, spec)

    doc = wait_finished(stack, batch_id)

    waves = doc["waves"]
    assert waves[0]["job_state"] == "BATCH_STATE_EXPIRED" and waves[0]["outcomes"] == {"retry": 4}
    assert [w["lines"] for w in waves] == [4, 4, 4]
    assert doc["sessions_by_state"] == {"completed": 3, "failed": 1}
    failed = next(s for s in doc["sessions"] if s["state"] == "failed")
    assert failed["session_id"] == sids[3] and failed["failures"][0].startswith("bad_request:")
    assert failed["turns_done"] == 1


@pytest.mark.slow
def test_a_wave_survives_its_workers_sigkill_and_a_redis_wipe_and_commits_each_turn_once(
    stack: Stack, batch_emulator: Callable[..., str], tmp_path: Path
) -> None:
    stack.emulator_url = batch_emulator("--batch-turnaround-s", "4")
    batch_env(stack)
    stack.extra_env["EDITQUEUE_RECONCILE_INTERVAL_S"] = "1"
    first = stack.start_worker()
    batch_id, _ = submit_batch(stack, write_sessions(tmp_path / "o.jsonl", 6, TURNS[:2]))
    wait_until(
        lambda: any(w["state"] == "sent" for w in batch_doc(stack, batch_id)["waves"]),
        30,
        "a wave in flight",
    )

    first.kill()
    redis.Redis(port=stack.redis_port).flushall()
    stack.start_worker()
    doc = wait_finished(stack, batch_id, timeout_s=120)

    assert doc["sessions_by_state"] == {"completed": 6}
    assert emulator_stats(stack.emulator_url)["batch"]["lines_run"] == 12  # no turn sent twice
    assert len(result_keys(stack)) == 12
    assert sum(w["outcomes"].get("committed", 0) for w in doc["waves"]) == 12
