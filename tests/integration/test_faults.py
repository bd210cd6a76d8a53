"""Faults injected into the real stack (redis-server, moto's S3 server, the emulator, worker
processes), and what must hold afterwards: no turn lost, none committed twice, a clear error.

"Committed once" is checked three ways: the bucket is versioned, so a second write of a
`result.json` would leave a second version; only one worker logs `outcome=committed` for each
turn (a losing duplicate logs `outcome=duplicate`); and the emulator's lineage (generation n,
parent = sha256 of turn n-1's stored image) shows each turn was built on the image that was
committed before it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import boto3
import pytest
import redis
import requests
from celery import Celery
from PIL import Image

from tests.integration.services import (
    Proc,
    Stack,
    free_port,
    spawn,
    start_redis,
    wait_until,
)

pytestmark = pytest.mark.integration

FAULT_BUCKET = "editqueue-faults"
TURN_RE = r"turn {sid}/{index} attempt \d+: outcome=committed"
ONE_TURN = "image_size: 512\nturns:\n  - prompt: a room\n"
TWO_TURNS = "image_size: 512\nturns:\n  - prompt: a room\n  - prompt: paint it #8FAF8A\n"
# The shortest visibility timeout the worker accepts with a 2 s API deadline (12 s task + 1 s).
SHORT_LEASES = {"EDITQUEUE_API_TIMEOUT_S": "2", "EDITQUEUE_VISIBILITY_TIMEOUT_S": "14"}


# --- fixtures and helpers ---------------------------------------------------------------------


def s3_client(url: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="module")
def versioned_bucket(s3_url: str) -> str:
    """A bucket that keeps every version, so a rewritten `result.json` cannot hide."""
    s3 = s3_client(s3_url)
    s3.create_bucket(Bucket=FAULT_BUCKET)
    s3.put_bucket_versioning(Bucket=FAULT_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return FAULT_BUCKET


@pytest.fixture
def fstack(
    tmp_path: Path, redis_port: int, s3_url: str, emulator_url: str, versioned_bucket: str
) -> Iterator[Stack]:
    redis.Redis(port=redis_port).flushall()
    result = Stack(tmp_path, redis_port, s3_url, emulator_url, versioned_bucket)
    yield result
    result.stop()


def private_emulator(stack: Stack, *args: str) -> Proc:
    """An emulator only this test talks to (its stats and triggers are this test's alone)."""
    port = free_port()
    argv = [sys.executable, "-m", "emulator", "--port", str(port), "--seed", "3", *args]
    proc = spawn(argv, stack.workdir / f"emulator-{port}.log")
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: requests.get(f"{url}/healthz", timeout=1).ok, 20, "emulator")
    stack.extra_env["EDITQUEUE_API_BASE_URL"] = url
    stack.workers.append(proc)  # stopped with the workers
    return proc


def emulator_stats(stack: Stack) -> dict[str, Any]:
    url = stack.extra_env["EDITQUEUE_API_BASE_URL"]
    stats: dict[str, Any] = requests.get(f"{url}/emulator/stats", timeout=5).json()
    return stats


def status(stack: Stack, sid: str) -> dict[str, Any]:
    out = stack.cli("status", sid, "--json")
    assert out.returncode in (0, 1), out.stderr
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def wait_state(
    stack: Stack, sid: str, states: set[str] | None = None, timeout_s: float = 90
) -> dict[str, Any]:
    """Poll `status --json` until the session is in one of `states` (default: finished)."""
    wanted = states or {"completed", "failed", "cancelled"}
    found: dict[str, Any] = {}

    def done() -> bool:
        found.update(status(stack, sid))
        return found["state"] in wanted

    wait_until(done, timeout_s, f"session {sid} in {wanted}")
    return found


def wait_parked(stack: Stack, sid: str, timeout_s: float = 30) -> dict[str, Any]:
    """Poll until turn 1 of `sid` waits with a reason (a park); returns that turn's status."""
    found: dict[str, Any] = {}

    def parked() -> bool:
        found.update(status(stack, sid)["turns"][0])
        return found["state"] == "waiting" and found["waiting_reason"] is not None

    wait_until(parked, timeout_s, f"turn 1 of {sid} parked")
    return found


def write_spec(stack: Stack, text: str, name: str = "spec.yaml") -> Path:
    path = stack.workdir / name
    path.write_text(text)
    return path


def submit(stack: Stack, text: str, name: str = "spec.yaml") -> list[str]:
    out = stack.cli("submit", str(write_spec(stack, text, name)))
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def result_versions(stack: Stack, sid: str) -> dict[int, int]:
    """How many versions of each turn's `result.json` the versioned bucket holds."""
    s3 = s3_client(stack.s3_url)
    prefix = f"{stack.prefix}/sessions/{sid}/turns/"
    counts: dict[int, int] = {}
    for page in s3.get_paginator("list_object_versions").paginate(
        Bucket=stack.bucket, Prefix=prefix
    ):
        for version in page.get("Versions", []):
            if version["Key"].endswith("/result.json"):
                index = int(version["Key"][len(prefix) :].split("/")[0])
                counts[index] = counts.get(index, 0) + 1
    return counts


def blob(stack: Stack, sha: str) -> bytes:
    key = f"{stack.prefix}/blobs/sha256/{sha}"
    body: bytes = s3_client(stack.s3_url).get_object(Bucket=stack.bucket, Key=key)["Body"].read()
    return body


def lineage(data: bytes) -> tuple[int, str]:
    """The emulator writes `generation=k parent=<sha>` into each image's comment."""
    comment = Image.open(io.BytesIO(data)).info.get("comment", b"").decode()
    match = re.search(r"generation=(\d+) parent=(\w+)", comment)
    assert match, f"no emulator lineage in {comment!r}"
    return int(match.group(1)), match.group(2)


def worker_logs(stack: Stack) -> str:
    return "\n".join(proc.output() for proc in stack.workers)


def assert_committed_once(stack: Stack, doc: dict[str, Any]) -> None:
    """Every turn succeeded, was written once, was logged as won once, and chains on its parent."""
    sid = doc["session_id"]
    assert doc["state"] == "completed", doc
    indexes = [t["index"] for t in doc["turns"]]
    assert result_versions(stack, sid) == dict.fromkeys(indexes, 1)
    logs = worker_logs(stack)
    for index in indexes:
        won = re.findall(TURN_RE.format(sid=sid, index=index), logs)
        assert len(won) == 1, f"turn {index} logged as committed {len(won)} times"
    previous = "none"
    for turn in doc["turns"]:
        data = blob(stack, turn["image"]["blob"])
        assert lineage(data) == (turn["index"], previous), "a turn was built on a lost image"
        previous = hashlib.sha256(data).hexdigest()


def ok_calls(stats: dict[str, Any]) -> int:
    return int(stats["successes"])


# --- crashes ----------------------------------------------------------------------------------

# (failpoint, paid calls expected: the turn it hits is paid again only if it had not committed)
# `after_commit` also proves the chain survives; the other two cost ~20 s each, so they are slow.
FAILPOINTS = [
    pytest.param("after_call", 3, marks=pytest.mark.slow, id="after_call"),
    pytest.param("after_blobs", 3, marks=pytest.mark.slow, id="after_blobs"),
    pytest.param("after_commit", 2, id="after_commit"),
]


@pytest.mark.parametrize(("point", "paid"), FAILPOINTS)
def test_worker_sigkilled_at_a_failpoint_loses_no_turn_and_commits_each_once(
    fstack: Stack, point: str, paid: int
) -> None:
    """Injected: SIGKILL of the worker's main process at `point` during turn 1 of 2.

    Must hold: the broker redelivers turn 1 after the visibility timeout, the session completes,
    each result.json is written once, and after `after_commit` the redelivery (not a sweep: the
    sweep interval is out of reach here) still chains turn 2.
    """
    private_emulator(fstack, "--latency-s", "0.3")
    marker = fstack.workdir / f"fired-{point}"
    fstack.extra_env.update(
        EDITQUEUE_FAILPOINT=point,
        EDITQUEUE_FAILPOINT_MARKER=str(marker),
        EDITQUEUE_SWEEP_INTERVAL_S="600",
        **SHORT_LEASES,
    )
    victim = fstack.start_worker()
    (sid,) = submit(fstack, TWO_TURNS)
    victim.popen.wait(timeout=60)
    assert victim.popen.returncode == -signal.SIGKILL and marker.exists()
    del fstack.extra_env["EDITQUEUE_FAILPOINT"]
    rescuer = fstack.start_worker()

    doc = wait_state(fstack, sid, timeout_s=120)

    assert_committed_once(fstack, doc)
    assert ok_calls(emulator_stats(fstack)) == paid
    # Turn 1 ran on the rescuer: the broker's redelivery of attempt 1 (same task id) or, when
    # the dead worker's lease lapsed first, attempt 2 from the sweep (worker/recovery.py); the
    # later of the two is absorbed ("busy" while the dead delivery's lease is held).
    delivered = re.findall(
        rf"run_turn\[{sid}:0001:\d+\] succeeded in [\d.]+s: '(\w+)'", rescuer.output()
    )
    outcomes = [outcome for outcome in delivered if outcome != "busy"]
    if point == "after_commit":
        assert outcomes == ["already_done"], rescuer.output()[-4000:]  # and it chained turn 2
    else:
        assert outcomes.count("committed") == 1, rescuer.output()[-4000:]
        assert set(outcomes) <= {"committed", "already_done"}, rescuer.output()[-4000:]


def child_talking_to(parent: int, port: int) -> int:
    """The pool child of `parent` that has a TCP connection open to `port`."""
    out = subprocess.run(
        ["ps", "--ppid", str(parent), "-o", "pid="], capture_output=True, text=True, check=True
    )
    for pid in (int(p) for p in out.stdout.split()):
        inodes = {
            link.readlink().name[len("socket:[") : -1]
            for link in Path(f"/proc/{pid}/fd").iterdir()
            if link.readlink().name.startswith("socket:")
        }
        for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].split(":")[1], 16)
            if remote_port == port and fields[9] in inodes:
                return pid
    raise AssertionError(f"no child of {parent} is talking to port {port}")


def test_prefork_child_killed_mid_call_is_requeued_at_once_and_completes(fstack: Stack) -> None:
    """Injected: SIGKILL of the prefork pool child that is waiting for the API's answer.

    Must hold: the turn is rejected back to the queue at once (task_reject_on_worker_lost), waits
    out the dead child's 15 s lease (so two deliveries never pay at once), runs again on the
    other child and commits once, long before the 90 s visibility timeout could bring it back.
    """
    private_emulator(fstack, "--latency-s", "4")
    port = int(fstack.extra_env["EDITQUEUE_API_BASE_URL"].rsplit(":", 1)[1])
    fstack.extra_env["EDITQUEUE_VISIBILITY_TIMEOUT_S"] = "90"
    worker = fstack.start_worker("--pool", "prefork", "--concurrency", "2")
    (sid,) = submit(fstack, ONE_TURN)
    wait_until(lambda: emulator_stats(fstack)["in_flight"] == 1, 30, "the API call in flight")
    child = child_talking_to(worker.popen.pid, port)
    killed_at = time.monotonic()
    os.kill(child, signal.SIGKILL)

    doc = wait_state(fstack, sid, timeout_s=85)
    recovered_s = time.monotonic() - killed_at

    assert_committed_once(fstack, doc)
    assert recovered_s < 70, "came back by the visibility timeout, not by the pool's reject"
    assert "WorkerLostError" in worker.output()
    assert worker.output().count(f"run_turn[{sid}:0001:1] received") >= 2, "not requeued"
    assert worker.popen.poll() is None, "the main process survives its child"
    assert ok_calls(emulator_stats(fstack)) == 2  # the killed call was answered (and billed)


def test_a_duplicate_delivery_after_the_lease_was_lost_gets_412_and_carries_on(
    fstack: Stack,
) -> None:
    """Injected: turn 1's lease deleted from Redis mid-call (as a wipe would) and a duplicate
    message for turn 1 sent, so two deliveries pay for the same turn.

    Must hold: the second commit gets 412 from the conditional put, reads the winner and
    carries on (`outcome=duplicate` in its log); result.json has one version and turn 2 is built
    on the winner's image.
    """
    private_emulator(fstack, "--latency-s", "3")
    fstack.start_worker()
    fstack.start_worker()
    (sid,) = submit(fstack, TWO_TURNS)
    wait_until(lambda: emulator_stats(fstack)["in_flight"] == 1, 30, "turn 1 in its API call")
    assert redis.Redis(port=fstack.redis_port).delete(f"eq:lease:{sid}:1") == 1
    Celery(broker=fstack.broker_url).send_task(
        "editqueue.run_turn", args=[sid, 1], queue="editqueue.turns"
    )

    doc = wait_state(fstack, sid, timeout_s=60)

    assert_committed_once(fstack, doc)
    assert re.search(rf"turn {sid}/1 attempt 1: outcome=duplicate", worker_logs(fstack))
    assert ok_calls(emulator_stats(fstack)) == 3


# --- Redis loses its memory -------------------------------------------------------------------


def batch_spec(sessions: int, turns: int) -> str:
    """A JSONL batch: `sessions` sessions of `turns` turns each, one per line."""
    lines = []
    for s in range(sessions):
        prompts = ["a room", *(f"s{s} change {t} #8FAF8A" for t in range(2, turns + 1))]
        lines.append(json.dumps({"image_size": "512", "turns": [{"prompt": p} for p in prompts]}))
    return "\n".join(lines) + "\n"


def committed_count(stack: Stack) -> int:
    s3 = s3_client(stack.s3_url)
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=stack.bucket, Prefix=f"{stack.prefix}/sessions/"
    ):
        count += sum(1 for o in page.get("Contents", []) if o["Key"].endswith("/result.json"))
    return count


def failure_count(stack: Stack) -> int:
    s3 = s3_client(stack.s3_url)
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=stack.bucket, Prefix=f"{stack.prefix}/sessions/"
    ):
        count += sum(1 for o in page.get("Contents", []) if o["Key"].endswith("/failure.json"))
    return count


def own_redis(stack: Stack) -> Proc:
    """Point the stack at a redis-server of its own (so the test may kill and restart it)."""
    started = start_redis(stack.workdir)
    assert started is not None
    proc, port = started
    stack.redis_port = port
    stack.workers.append(proc)
    return proc


def wipe_and_restart_redis(stack: Stack, proc: Proc) -> Proc:
    """FLUSHALL, then kill redis-server and start an empty one on the same port."""
    redis.Redis(port=stack.redis_port).flushall()
    proc.kill()
    port = stack.redis_port
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    fresh = spawn([*argv, "--appendonly", "no"], stack.workdir / f"redis-{port}-again.log")
    stack.workers.append(fresh)
    wait_until(lambda: bool(redis.Redis(port=port).ping()), 10, "restarted redis-server")
    return fresh


def test_redis_wiped_and_restarted_mid_batch_heals_by_the_workers_sweep(fstack: Stack) -> None:
    """Injected: FLUSHALL and a restart of redis-server (empty) while a batch runs.

    Must hold: with no operator, the workers' sweep notices the lost epoch, rebuilds the index
    from S3 and re-enqueues; every session completes and no turn is committed twice.
    """
    redis_proc = own_redis(fstack)
    private_emulator(fstack, "--latency-s", "0.3")
    fstack.extra_env["EDITQUEUE_SWEEP_INTERVAL_S"] = "1"
    fstack.start_worker()
    fstack.start_worker()
    sids = submit(fstack, batch_spec(6, 3), "batch.jsonl")
    wait_until(lambda: committed_count(fstack) >= 4, 60, "a few turns committed")
    wipe_and_restart_redis(fstack, redis_proc)

    docs = [wait_state(fstack, sid, timeout_s=120) for sid in sids]

    for doc in docs:
        assert_committed_once(fstack, doc)
    # Only a full reconcile sets the epoch, and the restarted Redis began empty.
    assert redis.Redis(port=fstack.redis_port).exists("eq:epoch")


def fleet_idle(stack: Stack, quiet_s: float = 3.0) -> None:
    """Wait until no API call is in flight and no turn committed for `quiet_s`."""
    last = (-1, time.monotonic())

    def quiet() -> bool:
        nonlocal last
        now = (committed_count(stack), time.monotonic())
        if emulator_stats(stack)["in_flight"] or now[0] != last[0]:
            last = now
            return False
        return now[1] - last[1] >= quiet_s

    wait_until(quiet, 60, "the fleet to go idle")


@pytest.mark.slow
def test_redis_wiped_and_restarted_then_reconcile_completes_every_session_once(
    fstack: Stack,
) -> None:
    """Injected: FLUSHALL and an empty restart of redis-server mid-batch, with the sweep off.

    Must hold: the queued turns are gone, so the batch stalls; `editqueue reconcile` re-enqueues
    exactly one turn per stalled session, a second run enqueues nothing, and every session then
    completes with no turn committed twice.
    """
    redis_proc = own_redis(fstack)
    private_emulator(fstack, "--latency-s", "0.3")
    fstack.extra_env["EDITQUEUE_SWEEP_INTERVAL_S"] = "600"
    workers = [fstack.start_worker(), fstack.start_worker()]
    sids = submit(fstack, batch_spec(8, 3), "batch.jsonl")
    wait_until(lambda: committed_count(fstack) >= 4, 60, "a few turns committed")
    wipe_and_restart_redis(fstack, redis_proc)
    fleet_idle(fstack)
    unfinished = [sid for sid in sids if status(fstack, sid)["state"] != "completed"]
    # A turn chained after the restart has a live entry and its message in the broker.
    client = redis.Redis(port=fstack.redis_port)
    stalled = [sid for sid in unfinished if not client.exists(f"eq:live:{sid}")]
    assert stalled, "nothing stalled: the wipe came too late to test anything"
    for proc in workers:  # a warm shutdown: nothing runs during the reconciles, counts are exact
        proc.kill(signal.SIGTERM)

    first = fstack.cli("reconcile")
    again = fstack.cli("reconcile")
    fstack.start_worker()
    docs = [wait_state(fstack, sid, timeout_s=120) for sid in sids]

    assert (first.returncode, first.stdout) == (0, f"enqueued {len(stalled)} turn(s)\n")
    assert (again.returncode, again.stdout) == (0, "enqueued 0 turn(s)\n")
    for doc in docs:
        assert_committed_once(fstack, doc)


# --- API fault storms -------------------------------------------------------------------------

# (trigger, outcomes of the turn's calls in order, the error kind the worker logs)
STORM = [
    ("429x1", ["fault:429", "ok"], "rate_limited"),
    ("503x2", ["fault:503", "fault:503", "ok"], "server_error"),
    ("hangx1", ["fault:hang", "ok"], "timeout"),
    ("dripx1", ["fault:drip", "ok"], "timeout"),
    ("truncatedx1", ["fault:truncated", "ok"], "malformed_response"),
    ("notjsonx1", ["fault:notjson", "ok"], "malformed_response"),
    ("502x1", ["fault:502", "ok"], "server_error"),
    ("500x1", ["fault:500", "ok"], "server_error"),
    ("504x1", ["fault:504", "ok"], "server_error"),
    ("429barex1", ["fault:429bare", "ok"], "rate_limited"),
]
RETRY_DELAY_S = 2.5


def test_transient_api_faults_are_retried_and_each_turn_commits_once(fstack: Stack) -> None:
    """Injected, one per turn of one session: 429 with RetryInfo, 503 twice, a hang past the
    2 s deadline, a dripping body, truncated JSON, 200 with HTML, 502 HTML, 500, 504, bare 429.

    Must hold: each is classified transient (the worker logs its kind), retried until it
    succeeds, the 429 waits at least its retryDelay, and every turn commits once.
    """
    private_emulator(
        fstack, "--latency-s", "0.2", "--retry-delay-s", str(RETRY_DELAY_S), "--hang-s", "4"
    )
    # 3 s of countdown may sit in the broker, so the 2.5 s retryDelay is a countdown, not a park.
    fstack.extra_env.update(EDITQUEUE_API_TIMEOUT_S="2", EDITQUEUE_BACKOFF_MAX_S="3")
    fstack.start_worker()
    turns = "".join(f"  - prompt: 'edit {n} !fault={t}'\n" for n, (t, _, _) in enumerate(STORM))
    (sid,) = submit(fstack, f"image_size: 512\nturns:\n{turns}")

    doc = wait_state(fstack, sid, timeout_s=120)

    assert_committed_once(fstack, doc)
    calls = sorted(emulator_stats(fstack)["calls"], key=lambda c: c["start"])
    assert [c["outcome"] for c in calls] == [o for _, outcomes, _ in STORM for o in outcomes]
    assert [t["attempts"] for t in doc["turns"]] == [len(o) for _, o, _ in STORM]
    waited_s = calls[1]["start"] - calls[0]["end"]
    assert waited_s >= RETRY_DELAY_S, f"retried {waited_s:.2f}s after a 429 asking for 2.5s"
    logs = worker_logs(fstack)
    for index, (_, _, kind) in enumerate(STORM, start=1):
        line = rf"turn {sid}/{index} attempt 1: outcome=retried .*reason={kind} .*retry_in_s="
        assert re.search(line, logs), index


# (trigger, error kind, HTTP status, words the message must hold, calls the turn may make)
PERMANENT = [
    ("blocked", "blocked", 200, "blocked (SAFETY); reword the prompt", 1),
    ("image_safety", "blocked", 200, "IMAGE_SAFETY", 1),
    ("prohibited", "blocked", 200, "IMAGE_PROHIBITED_CONTENT", 1),
    ("noimage", "no_image", 200, "without an image", 3),
    ("textonly", "no_image", 200, "only text", 3),
    ("nocandidate", "no_image", 200, "without any candidate", 3),
    ("400", "bad_request", 400, "INVALID_ARGUMENT", 1),
    ("403", "auth", 403, "check GEMINI_API_KEY", 1),
]


def test_permanent_api_faults_fail_the_turn_with_the_reason_after_bounded_calls(
    fstack: Stack,
) -> None:
    """Injected: a blocked prompt, IMAGE_SAFETY and PROHIBITED finish reasons, 200 without an
    image (NO_IMAGE, text only, no candidate), a 400 and a 403, one per session.

    Must hold: each session fails; `status --json` shows the kind, HTTP status and message;
    blocks and 4xx stop after one call and a missing image after at most 3; a blocked turn
    retried with a reworded prompt then completes.
    """
    private_emulator(fstack, "--latency-s", "0.1")
    fstack.start_worker()
    lines = [
        json.dumps({"image_size": "512", "turns": [{"prompt": f"a room !fault={name}"}]})
        for name, *_ in PERMANENT
    ]
    sids = submit(fstack, "\n".join(lines) + "\n", "batch.jsonl")

    docs = [wait_state(fstack, sid) for sid in sids]

    outcomes = emulator_stats(fstack)["by_outcome"]
    for doc, (name, kind, code, words, calls) in zip(docs, PERMANENT, strict=True):
        turn = doc["turns"][0]
        assert (doc["state"], turn["state"]) == ("failed", "failed"), name
        assert (turn["error"]["kind"], turn["error"]["status"]) == (kind, code), name
        assert words in turn["error"]["message"], (name, turn["error"])
        assert turn["attempts"] == calls and outcomes[f"fault:{name}"] == calls, name
    retried = fstack.cli("retry", sids[0], "--prompt", "a room with a plant")
    assert retried.returncode == 0, retried.stderr
    assert wait_state(fstack, sids[0])["state"] == "completed"


# --- waits that outlast the lease -------------------------------------------------------------


def broker_messages(client: redis.Redis) -> list[dict[str, Any]]:
    """Every Celery message kombu holds in Redis: in queue lists and in the `unacked` hash."""
    found: list[dict[str, Any]] = []
    for key in client.scan_iter(count=500):
        kind = client.type(key)
        if kind == b"list":
            raws = [json.loads(v) for v in cast(list[bytes], client.lrange(key, 0, -1))]
        elif kind == b"hash" and key == b"unacked":
            raws = [json.loads(v)[0] for v in cast(list[bytes], client.hvals(key))]
        else:
            continue
        found += [m for m in raws if isinstance(m, dict) and "headers" in m]
    return found


def eta_ahead_s(message: dict[str, Any], now: float) -> float | None:
    """How far in the future a message's ETA (set by a countdown) lies, or None."""
    eta = message["headers"].get("eta")
    if not eta:
        return None
    return datetime.fromisoformat(eta).timestamp() - now


class BrokerWatch(threading.Thread):
    """Samples every broker message's ETA while a test runs."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis(port=port)
        self.ahead: list[float] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.05):
            try:
                now = time.time()
                for message in broker_messages(self.client):
                    ahead = eta_ahead_s(message, now)
                    if ahead is not None:
                        self.ahead.append(ahead)
            except (redis.RedisError, ValueError):
                continue

    def stop(self) -> list[float]:
        self.stopping.set()
        self.join(timeout=5)
        return self.ahead


def test_long_retry_delay_and_daily_quota_park_in_s3_and_never_sit_in_the_broker(
    fstack: Stack,
) -> None:
    """Injected: a 429 asking for 120 s, a 429 on the per-day quota, and three bare 429s.

    Must hold: the first two turns park (state `waiting` with the reason and the due time, a
    `parked.json` in S3); the third retries on short countdowns and completes; no message in
    Redis ever carries an ETA further ahead than the visibility timeout (20 s).
    """
    private_emulator(fstack, "--latency-s", "0.1", "--retry-delay-s", "120")
    fstack.extra_env.update(EDITQUEUE_BACKOFF_BASE_S="1", EDITQUEUE_BACKOFF_MAX_S="3")
    watch = BrokerWatch(fstack.redis_port)
    watch.start()
    fstack.start_worker()
    started = time.time()
    lines = [
        json.dumps({"image_size": "512", "turns": [{"prompt": f"a room !fault={name}"}]})
        for name in ("429x1", "429dailyx1", "429barex3")
    ]
    slow, daily, short = submit(fstack, "\n".join(lines) + "\n", "batch.jsonl")

    assert wait_state(fstack, short)["state"] == "completed"
    slow_turn, daily_turn = (wait_parked(fstack, sid) for sid in (slow, daily))
    ahead = watch.stop()

    assert (slow_turn["state"], slow_turn["waiting_reason"]) == ("waiting", "retry_delay")
    assert started + 119 <= slow_turn["due_at"] <= time.time() + 121
    assert (daily_turn["state"], daily_turn["waiting_reason"]) == ("waiting", "daily_quota")
    assert daily_turn["due_at"] == next_pacific_midnight(started)
    assert slow_turn["error"]["kind"] == daily_turn["error"]["kind"] == "rate_limited"
    for sid in (slow, daily):
        key = f"{fstack.prefix}/sessions/{sid}/turns/0001/parked.json"
        s3_client(fstack.s3_url).head_object(Bucket=fstack.bucket, Key=key)
    assert ahead, "the watch saw no countdown at all: it cannot have checked anything"
    assert max(ahead) <= 20, f"a message {max(ahead):.0f}s ahead sat in the broker"
    assert ok_calls(emulator_stats(fstack)) == 1


def next_pacific_midnight(now: float) -> float:
    local = datetime.fromtimestamp(now, ZoneInfo("America/Los_Angeles"))
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.timestamp()


def test_api_refusing_connections_parks_the_turn_as_an_outage_until_it_is_back(
    fstack: Stack,
) -> None:
    """Injected: the API's port refuses connections for every allowed attempt.

    Must hold: the turn parks with reason `outage` and a `connection` error (never failed or
    lost); once the API listens again the sweep re-enqueues it when due and it completes.
    """
    port = free_port()
    fstack.extra_env.update(
        EDITQUEUE_API_BASE_URL=f"http://127.0.0.1:{port}",
        EDITQUEUE_MAX_ATTEMPTS="2",
        EDITQUEUE_OUTAGE_PARK_S="5",
        EDITQUEUE_SWEEP_INTERVAL_S="1",
    )
    fstack.start_worker()
    (sid,) = submit(fstack, ONE_TURN)
    turn = wait_parked(fstack, sid)
    assert turn["waiting_reason"] == "outage", turn
    assert turn["error"]["kind"] == "connection"
    argv = [sys.executable, "-m", "emulator", "--port", str(port)]
    fstack.workers.append(spawn(argv, fstack.workdir / "emulator-late.log"))

    done = wait_state(fstack, sid, timeout_s=60)

    assert_committed_once(fstack, done)
    assert done["turns"][0]["attempts"] >= 3  # two refused, then (after the park) the answer


def test_a_turn_parked_max_parks_times_fails_with_its_reason_though_the_sweep_unparks_it(
    fstack: Stack,
) -> None:
    """Injected: the API's port never listens; parks are short and the sweep runs every second.

    Must hold: the real sweep re-enqueues the parked turn (deleting `parked.json`) each time, yet
    the parks are counted (`parks.json`), so after EDITQUEUE_MAX_PARKS parks the turn fails with
    its reason instead of parking forever.
    """
    fstack.extra_env.update(
        EDITQUEUE_API_BASE_URL=f"http://127.0.0.1:{free_port()}",
        EDITQUEUE_MAX_ATTEMPTS="1",
        EDITQUEUE_OUTAGE_PARK_S="1",
        EDITQUEUE_SWEEP_INTERVAL_S="1",
        EDITQUEUE_MAX_PARKS="2",
    )
    fstack.start_worker()
    (sid,) = submit(fstack, ONE_TURN)

    done = wait_state(fstack, sid, timeout_s=60)

    assert done["state"] == "failed", done
    turn = done["turns"][0]
    assert turn["error"]["kind"] == "connection" and turn["attempts"] == 3, turn
    key = f"{fstack.prefix}/sessions/{sid}/turns/0001/parks.json"
    tally = json.loads(
        s3_client(fstack.s3_url).get_object(Bucket=fstack.bucket, Key=key)["Body"].read()
    )
    assert tally["parks"] == 2
    parked = rf"turn {sid}/1 attempt \d+: outcome=parked .*park_reason=outage park_until=20"
    assert len(re.findall(parked, worker_logs(fstack))) == 2


# --- S3 faults --------------------------------------------------------------------------------


class FlakyProxy:
    """A TCP proxy in front of the S3 server that can refuse and cut connections on demand."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = upstream_port
        self.port = free_port()
        self.cut = 0
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.up()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        """Refuse new connections and reset every open one."""
        assert self._listener is not None
        # shutdown() wakes the thread blocked in accept(); close() alone would keep the port.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            for conn in self._conns:
                self.cut += 1
                conn.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
                server = socket.create_connection(("127.0.0.1", self.upstream))
            except OSError:
                return
            with self._lock:
                self._conns += [client, server]
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def test_s3_unreachable_for_seconds_mid_run_loses_nothing(fstack: Stack) -> None:
    """Injected: S3 refuses connections and resets open ones for 4 s while sessions run.

    Must hold: reads and writes are retried (botocore, then the turn's own requeue), every
    session completes and no turn is committed twice.
    """
    proxy = FlakyProxy(int(fstack.s3_url.rsplit(":", 1)[1]))
    private_emulator(fstack, "--latency-s", "0.5")
    fstack.extra_env["EDITQUEUE_S3_ENDPOINT_URL"] = f"http://127.0.0.1:{proxy.port}"
    fstack.start_worker()
    fstack.start_worker()
    sids = submit(fstack, batch_spec(3, 3), "batch.jsonl")
    wait_until(lambda: committed_count(fstack) >= 2, 60, "a few turns committed")
    proxy.down()
    time.sleep(4)
    proxy.up()

    docs = [wait_state(fstack, sid, timeout_s=120) for sid in sids]

    assert proxy.cut > 0, "no connection was open when S3 went away"
    for doc in docs:
        assert_committed_once(fstack, doc)


# --- secrets ----------------------------------------------------------------------------------


def redis_dump(client: redis.Redis) -> bytes:
    """Every key name and every value (DUMP) in Redis, concatenated."""
    out = bytearray()
    for key in client.scan_iter(count=500):
        out += key + b"\n" + (client.dump(key) or b"") + b"\n"
    return bytes(out)


def s3_dump(stack: Stack) -> tuple[int, bytes]:
    """Every version of every object under the test's prefix (count, concatenated bytes)."""
    s3 = s3_client(stack.s3_url)
    out, count = bytearray(), 0
    for page in s3.get_paginator("list_object_versions").paginate(
        Bucket=stack.bucket, Prefix=f"{stack.prefix}/"
    ):
        for v in page.get("Versions", []):
            got = s3.get_object(Bucket=stack.bucket, Key=v["Key"], VersionId=v["VersionId"])
            out += v["Key"].encode() + b"\n" + got["Body"].read()
            count += 1
    return count, bytes(out)


def test_the_api_key_is_nowhere_after_a_run_with_faults(fstack: Stack) -> None:
    """Injected: 429, 503, a hang, truncated JSON and a 403 while the emulator checks the key.

    Must hold: the key string is in no worker log, no Redis key or value (sampled throughout
    the run, broker messages included), no S3 object version, no `status` output and no CLI
    error message.
    """
    key = fstack.env()["GEMINI_API_KEY"]
    emulator_args = ("--latency-s", "0.1", "--retry-delay-s", "0.5", "--hang-s", "2")
    private_emulator(fstack, *emulator_args, "--api-key", key)
    fstack.extra_env["EDITQUEUE_API_TIMEOUT_S"] = "1"
    fstack.start_worker()
    client = redis.Redis(port=fstack.redis_port)
    faults = ["429x1", "503x1", "hangx1", "truncatedx1"]
    good = {"image_size": "512", "turns": [{"prompt": f"edit !fault={f}"} for f in faults]}
    bad = {"image_size": "512", "turns": [{"prompt": "a room !fault=403"}]}
    sids = submit(fstack, f"{json.dumps(good)}\n{json.dumps(bad)}\n", "batch.jsonl")
    seen = bytearray()
    deadline = time.monotonic() + 90
    while (committed_count(fstack), failure_count(fstack)) != (4, 1):
        assert time.monotonic() < deadline, "the run did not finish"
        seen += redis_dump(client)
        time.sleep(0.2)
    seen += redis_dump(client)

    objects, stored = s3_dump(fstack)
    texts = {
        "worker logs": worker_logs(fstack),
        "status": fstack.cli("status", sids[1]).stdout,
        "status --json": "".join(fstack.cli("status", sid, "--json").stdout for sid in sids),
        "status table": fstack.cli("status").stdout,
        "errors": "".join(
            fstack.cli(*args).stderr
            for args in (("status", "nope"), ("retry", sids[0]), ("append", sids[1], " "))
        ),
    }
    assert objects > 10 and len(seen) > 1000, "too little was scanned to prove anything"
    assert "403" in texts["status --json"] and "error:" in texts["errors"]
    assert key.encode() not in seen, "the key is in Redis"
    assert key.encode() not in stored, "the key is in S3"
    for what, text in texts.items():
        assert key not in text, f"the key is in the {what}"
