"""The Interactions API transport end to end: real workers, Redis, moto's S3 and the emulator.

Each test starts its own emulator so its call log holds only that test's calls.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.services import Stack, start_emulator, wait_until
from tests.integration.test_faults import s3_client
from tests.integration.test_spine import (
    EXAMPLES,
    blob,
    lineage,
    status,
    submit,
    wait_state,
    write_spec,
)

pytestmark = pytest.mark.integration
# A chained 1K/2K turn sends its prompt and options only: far under one image's base64.
CHAINED_BODY_MAX_BYTES = 4096


def _own_emulator(stack: Stack, services_dir: Path, *extra: str) -> tuple[Any, str]:
    proc, url = start_emulator(services_dir, "--seed", "7", *extra)
    stack.extra_env["EDITQUEUE_API_BASE_URL"] = url
    return proc, url


def _calls(url: str) -> list[dict[str, Any]]:
    stats = requests.get(f"{url}/emulator/stats", timeout=5).json()
    return [c for c in stats["calls"] if c["route"] == "interactions"]


def _result(stack: Stack, sid: str, index: int) -> dict[str, Any]:
    s3 = s3_client(stack.s3_url)
    key = f"{stack.prefix}/sessions/{sid}/turns/{index:04d}/result.json"
    doc: dict[str, Any] = json.loads(s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read())
    return doc


def _assert_lineage(stack: Stack, doc: dict[str, Any], first_parent: str = "none") -> None:
    previous = first_parent
    for turn in doc["turns"]:
        data = blob(stack, turn["image"]["blob"])
        assert lineage(data) == (turn["index"], previous), f"turn {turn['index']} lost history"
        previous = hashlib.sha256(data).hexdigest()


def test_living_room_on_interactions_sends_each_turn_once_and_a_fork_continues_the_chain(
    stack: Stack, services_dir: Path
) -> None:
    emulator, url = _own_emulator(stack, services_dir)
    try:
        stack.start_worker()
        sid = submit(stack, EXAMPLES / "living-room-interactions.yaml")
        doc = wait_state(stack, sid, {"completed", "failed"}, timeout_s=120)
        assert doc["state"] == "completed", doc
        fork = stack.cli("fork", sid, "--at", "3")
        assert fork.returncode == 0, fork.stderr
        forked = fork.stdout.split()[0]
        assert stack.cli("append", forked, "Add a large fern by the window").returncode == 0
        branch = wait_state(stack, forked, {"completed", "failed"}, timeout_s=60)
        calls = _calls(url)
    finally:
        emulator.kill()
    sizes = [(t["image"]["width"], t["image"]["height"]) for t in doc["turns"]]
    assert sizes == [(2752, 1536)] * 4 + [(5504, 3072)]
    assert doc["transport"] == "interactions"
    assert [t["transport"] for t in doc["turns"]] == ["seed"] + ["chain"] * 4
    _assert_lineage(stack, doc)
    # At the emulator: six create calls (5 + the fork's turn 4), none carrying an image, and
    # every chained one only its own prompt.
    assert [(c["status"], c["images_in"]) for c in calls] == [(200, 0)] * 6
    assert all(c["request_bytes"] < CHAINED_BODY_MAX_BYTES for c in calls)
    assert [t["upload_bytes"] for t in doc["turns"]] == [c["request_bytes"] for c in calls[:5]]
    ids = [_result(stack, sid, n)["interaction_id"] for n in range(1, 6)]
    assert len(set(ids)) == 5 and all(ids)
    fourth = branch["turns"][3]
    assert fourth["state"] == "succeeded" and fourth["transport"] == "chain"
    third = blob(stack, doc["turns"][2]["image"]["blob"])
    assert lineage(blob(stack, fourth["image"]["blob"])) == (4, hashlib.sha256(third).hexdigest())


def test_an_expired_chain_falls_back_to_replay_from_s3_and_the_chain_resumes(
    stack: Stack, services_dir: Path
) -> None:
    emulator, url = _own_emulator(stack, services_dir, "--interaction-ttl-s", "3")
    try:
        spec = write_spec(
            stack.workdir,
            "transport: interactions\nimage_size: 1K\n"
            "turns:\n  - prompt: a room\n  - prompt: paint it #8FAF8A\n",
        )
        stack.start_worker()
        sid = submit(stack, spec)
        wait_state(stack, sid, {"completed", "failed"})
        time.sleep(3.5)  # the emulator forgets turn 2's interaction
        assert stack.cli("append", sid, "add a walnut bookshelf").returncode == 0
        assert stack.cli("append", sid, "warm evening light").returncode == 0
        doc = wait_state(stack, sid, {"completed", "failed"})
        calls = _calls(url)
    finally:
        emulator.kill()
    assert doc["state"] == "completed", (doc["turns"], calls)
    assert [t["transport"] for t in doc["turns"]] == ["seed", "chain", "seed", "chain"]
    _assert_lineage(stack, doc)
    # Turn 3: a 404 for the chain, then a new interaction carrying turns 1-2 (two images) from S3.
    assert [(c["status"], c["images_in"]) for c in calls] == [
        (200, 0),
        (200, 0),
        (404, None),
        (200, 2),
        (200, 0),
    ]
    assert doc["turns"][2]["upload_bytes"] > calls[3]["request_bytes"] > CHAINED_BODY_MAX_BYTES


def test_a_reworded_retry_of_a_failed_turn_chains_from_the_turn_before(
    stack: Stack, services_dir: Path
) -> None:
    emulator, url = _own_emulator(stack, services_dir)
    try:
        spec = write_spec(
            stack.workdir,
            "transport: interactions\nimage_size: 1K\nturns:\n  - prompt: a room\n"
            "  - prompt: 'something refused !fault=blocked'\n  - prompt: evening light\n",
        )
        stack.start_worker()
        sid = submit(stack, spec)
        failed = wait_state(stack, sid, {"completed", "failed"})
        assert failed["turns"][1]["error"]["kind"] == "blocked"
        assert stack.cli("retry", sid, "--prompt", "add a plant").returncode == 0
        doc = wait_state(stack, sid, {"completed", "failed"})
        calls = _calls(url)
    finally:
        emulator.kill()
    assert doc["state"] == "completed", doc
    assert [t["transport"] for t in doc["turns"]] == ["seed", "chain", "chain"]
    assert doc["turns"][1]["prompt"] == "add a plant"
    _assert_lineage(stack, doc)
    assert all(c["images_in"] in (0, None) for c in calls)  # nothing was replayed


@pytest.mark.slow
def test_a_worker_killed_mid_turn_commits_the_turn_once_and_the_chain_follows_the_commit(
    stack: Stack, services_dir: Path
) -> None:
    emulator, url = _own_emulator(stack, services_dir, "--latency-s", "3")
    try:
        spec = write_spec(
            stack.workdir,
            "transport: interactions\nimage_size: 1K\n"
            "turns:\n  - prompt: a room\n  - prompt: paint it #8FAF8A\n  - prompt: a lamp\n",
        )
        victim = stack.start_worker()
        sid = submit(stack, spec)
        wait_until(lambda: status(stack, sid)["turns"][1]["state"] == "running", 30, "turn 2")
        victim.kill()
        stack.start_worker()
        doc = wait_state(stack, sid, {"completed", "failed"}, timeout_s=90)
        second = _result(stack, sid, 2)
        third = _result(stack, sid, 3)
        calls = _calls(url)
        stored = requests.get(
            f"{url}/v1beta/interactions/{second['interaction_id']}",
            headers={"x-goog-api-key": "test-key-do-not-log-7f3a9c"},
            timeout=5,
        )
    finally:
        emulator.kill()
    assert doc["state"] == "completed", doc
    _assert_lineage(stack, doc)
    assert stored.status_code == 200  # the committed id is the chain the server holds
    assert third["transport"] == "chain"
    assert len(calls) >= 4  # turn 2 was asked for twice (the killed call ran on at the server)
