"""The spine end to end: real Redis, moto's S3 server over HTTP, the emulator, worker processes."""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from PIL import Image

from tests.integration.services import Stack, start_emulator, wait_until

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def status(stack: Stack, sid: str) -> dict[str, Any]:
    out = stack.cli("status", sid, "--json")
    assert out.returncode in (0, 1), out.stderr
    return json.loads(out.stdout)


def wait_state(stack: Stack, sid: str, states: set[str], timeout_s: float = 60) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def done() -> bool:
        found.update(status(stack, sid))
        return found["state"] in states

    wait_until(done, timeout_s, f"session {sid} in {states}")
    return found


def submit(stack: Stack, spec: Path) -> str:
    out = stack.cli("submit", str(spec))
    assert out.returncode == 0, out.stderr
    return out.stdout.split()[0]


def blob(stack: Stack, sha: str) -> bytes:
    s3 = boto3.client(
        "s3",
        endpoint_url=stack.s3_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    obj = s3.get_object(Bucket=stack.bucket, Key=f"{stack.prefix}/blobs/sha256/{sha}")
    return obj["Body"].read()


def lineage(data: bytes) -> tuple[int, str]:
    """The emulator writes `generation=k parent=<sha>` into each JPEG's comment."""
    comment = Image.open(io.BytesIO(data)).info.get("comment", b"").decode()
    match = re.search(r"generation=(\d+) parent=(\w+)", comment)
    assert match, f"no emulator lineage in {comment!r}"
    return int(match.group(1)), match.group(2)


def write_spec(tmp: Path, text: str) -> Path:
    path = tmp / "spec.yaml"
    path.write_text(text)
    return path


def test_living_room_session_runs_to_completion_through_submit(stack: Stack) -> None:
    stack.start_worker()
    stack.start_worker()
    sid = submit(stack, EXAMPLES / "living-room.yaml")

    doc = wait_state(stack, sid, {"completed", "failed"}, timeout_s=120)

    assert doc["state"] == "completed", doc
    sizes = [(t["image"]["width"], t["image"]["height"]) for t in doc["turns"]]
    assert sizes == [(2752, 1536)] * 4 + [(5504, 3072)]
    previous = "none"
    for turn in doc["turns"]:
        data = blob(stack, turn["image"]["blob"])
        generation, parent = lineage(data)
        assert (generation, parent) == (turn["index"], previous), "history was not replayed"
        previous = hashlib.sha256(data).hexdigest()
    assert doc["cost_usd"] > 0


def test_turn_appended_while_session_runs_waits_for_its_predecessor(stack: Stack) -> None:
    spec = write_spec(
        stack.workdir,
        "aspect_ratio: '16:9'\nimage_size: 1K\n"
        "turns:\n  - prompt: a room\n  - prompt: paint it #8FAF8A\n",
    )
    stack.start_worker()
    sid = submit(stack, spec)
    out = stack.cli("append", sid, "add a walnut bookshelf")
    assert out.returncode == 0, out.stderr

    doc = wait_state(stack, sid, {"completed", "failed"})

    assert doc["state"] == "completed"
    assert [t["index"] for t in doc["turns"]] == [1, 2, 3]
    third = blob(stack, doc["turns"][2]["image"]["blob"])
    second = blob(stack, doc["turns"][1]["image"]["blob"])
    assert lineage(third) == (3, hashlib.sha256(second).hexdigest())


def test_blocked_turn_fails_then_retry_with_new_prompt_completes(stack: Stack) -> None:
    spec = write_spec(
        stack.workdir,
        "image_size: 1K\nturns:\n  - prompt: a room\n"
        "  - prompt: 'something refused !fault=blocked'\n"
        "  - prompt: evening light\n",
    )
    stack.start_worker()
    sid = submit(stack, spec)

    failed = wait_state(stack, sid, {"completed", "failed"})
    assert failed["state"] == "failed"
    turn2 = failed["turns"][1]
    assert turn2["state"] == "failed" and turn2["error"]["kind"] == "blocked"
    assert turn2["attempts"] <= 3
    assert failed["turns"][2]["state"] == "waiting"
    assert stack.cli("status", sid).returncode == 1

    out = stack.cli("retry", sid, "--prompt", "add a plant")
    assert out.returncode == 0, out.stderr
    done = wait_state(stack, sid, {"completed", "failed"})
    assert done["state"] == "completed"
    assert done["turns"][1]["prompt"] == "add a plant"


def test_same_turn_delivered_twice_calls_the_api_once_and_commits_once(
    stack: Stack, services_dir: Path
) -> None:
    emulator, url = start_emulator(services_dir, "--latency-s", "1.5")
    stack.extra_env["EDITQUEUE_API_BASE_URL"] = url
    try:
        spec = write_spec(stack.workdir, "image_size: 1K\nturns:\n  - prompt: a room\n")
        sid = submit(stack, spec)
        # A duplicate delivery of the same turn, as a redelivery after a lost ack would be.
        from celery import Celery

        app = Celery(broker=stack.broker_url)
        app.send_task("editqueue.run_turn", args=[sid, 1], queue="editqueue.turns")
        stack.start_worker()
        stack.start_worker()
        doc = wait_state(stack, sid, {"completed", "failed"})
        time.sleep(BUSY_WAIT_S := 6)  # let the BUSY redelivery come back and find it done
        stats = requests.get(f"{url}/emulator/stats", timeout=5).json()
    finally:
        emulator.kill()
    assert doc["state"] == "completed"
    assert stats["successes"] == 1, (stats, BUSY_WAIT_S)
    assert doc["turns"][0]["attempts"] == 1


def test_worker_killed_mid_turn_is_finished_by_another_worker_in_seconds(
    stack: Stack, services_dir: Path
) -> None:
    """With the default visibility timeout (300 s): the heartbeat stops, the sweep of the other
    worker puts the turn back, and the dead call counts as possibly billed (status shows the
    turn as retrying meanwhile: tests/worker/test_recovery.py, bench/recovery.py)."""
    emulator, url = start_emulator(services_dir, "--latency-s", "3")
    stack.extra_env.update(EDITQUEUE_API_BASE_URL=url, EDITQUEUE_VISIBILITY_TIMEOUT_S="300")
    seen: set[str] = set()

    def turn_one() -> dict[str, Any]:
        doc = status(stack, sid)
        seen.add(doc["turns"][0]["state"])
        return doc

    try:
        spec = write_spec(stack.workdir, "image_size: 1K\nturns:\n  - prompt: a room\n")
        stack.start_worker()
        stack.start_worker()
        sid = submit(stack, spec)
        wait_until(lambda: turn_one()["turns"][0]["state"] == "running", 20, "turn running")
        owner = next(w for w in stack.workers if f"{sid}:0001:1" in w.output())  # "received"
        killed_at = time.monotonic()
        owner.kill()
        wait_until(lambda: turn_one()["state"] in ("completed", "failed"), 60, "recovered")
        recovered_s = time.monotonic() - killed_at
    finally:
        emulator.kill()
    doc = status(stack, sid)
    assert doc["state"] == "completed"
    assert recovered_s < 30, f"took {recovered_s:.1f}s"
    assert doc["turns"][0]["attempts"] == 2, seen
    recovered_by = [w for w in stack.workers if "stopped heartbeating" in w.output()]
    assert recovered_by and owner not in recovered_by  # the other worker's sweep put it back
    assert doc["possibly_billed_usd"] > 0
