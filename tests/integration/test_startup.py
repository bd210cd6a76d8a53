"""A worker refuses to start, before it consumes, when every turn would fail; `editqueue init`.

Real `editqueue worker` processes against the test's redis-server, moto's S3 server and the
emulator. A turn is queued first; each misconfigured worker must exit 2 naming the setting and
leave that turn queued, untouched, for the worker that starts right.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from shared.config import load_settings
from shared.preflight import store_finding
from tests.integration.services import BIN, Stack, wait_until

pytestmark = pytest.mark.integration

REFUSAL_TIMEOUT_S = 60
GOOGLE = "https://generativelanguage.googleapis.com"  # never contacted: refused before any call


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env_with(stack: Stack, **changes: str) -> dict[str, str]:
    env = stack.env()
    env.update(changes)
    return env


def start(stack: Stack, env: dict[str, str], name: str) -> subprocess.Popen[str]:
    argv = [str(BIN / "editqueue"), "worker", "--processes", "1", "-n", f"{name}@%h"]
    return subprocess.Popen(
        argv, env=env, cwd=stack.workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def turn_one(stack: Stack, sid: str) -> dict[str, object]:
    out = stack.cli("status", sid, "--json")
    turn: dict[str, object] = json.loads(out.stdout)["turns"][0]
    return turn


def test_misconfigured_workers_exit_2_naming_the_setting_and_consume_nothing(
    stack: Stack, tmp_path: Path
) -> None:
    spec = tmp_path / "one.yaml"
    spec.write_text("image_size: '512'\nturns:\n  - prompt: a small room\n")
    sid = stack.cli("submit", str(spec)).stdout.split()[0]
    cases = {
        "no-key": (
            env_with(stack, GEMINI_API_KEY="", EDITQUEUE_API_BASE_URL=GOOGLE),
            "GEMINI_API_KEY is empty, so every turn would fail with 403",
        ),
        "no-redis": (
            env_with(stack, EDITQUEUE_BROKER_URL=f"redis://127.0.0.1:{closed_port()}/0"),
            "EDITQUEUE_BROKER_URL redis://127.0.0.1:",
        ),
        "no-bucket": (
            env_with(stack, EDITQUEUE_STORE_URL="s3://no-such-bucket/x"),
            "EDITQUEUE_STORE_URL bucket no-such-bucket does not exist",
        ),
        "short-visibility": (
            env_with(stack, EDITQUEUE_VISIBILITY_TIMEOUT_S="10"),
            "EDITQUEUE_VISIBILITY_TIMEOUT_S=10 must exceed the longest task",
        ),
    }
    procs = {name: start(stack, env, name) for name, (env, _) in cases.items()}

    for name, proc in procs.items():
        _, stderr = proc.communicate(timeout=REFUSAL_TIMEOUT_S)
        assert proc.returncode == 2, (name, stderr[-2000:])
        assert f"error: worker not started: {cases[name][1]}" in stderr, (name, stderr)
        assert "Traceback" not in stderr and "test-key-do-not-log" not in stderr
    assert turn_one(stack, sid)["state"] == "queued"
    assert turn_one(stack, sid)["attempts"] == 0

    # No key at all, against the bundled emulator (which accepts any key): the worker starts.
    stack.extra_env["GEMINI_API_KEY"] = ""
    stack.start_worker()
    wait_until(lambda: turn_one(stack, sid)["state"] == "succeeded", 60, "turn 1 committed")


def test_init_creates_the_bucket_and_reports_each_check_so_a_worker_then_starts(
    stack: Stack,
) -> None:
    bucket = f"fresh-{uuid.uuid4().hex[:8]}"
    stack.extra_env.update(EDITQUEUE_STORE_URL=f"s3://{bucket}/prod", GEMINI_API_KEY="")

    first = stack.cli("init")
    again = stack.cli("init")

    assert first.returncode == 0, first.stdout + first.stderr
    lines = first.stdout.splitlines()
    assert lines[0].startswith(f"ok   EDITQUEUE_BROKER_URL: Redis at {stack.broker_url}")
    assert lines[1] == f"ok   EDITQUEUE_STORE_URL: bucket {bucket} at {stack.s3_url} created"
    assert lines[2].startswith("ok   GEMINI_API_KEY: empty, which is fine: the bundled emulator")
    assert lines[3] == "ready: start workers with `editqueue worker`"
    assert f"bucket {bucket} at {stack.s3_url} exists" in again.stdout
    stack.start_worker("--concurrency", "8")  # the command init recommends


def test_init_exits_2_listing_what_is_missing(stack: Stack) -> None:
    stack.extra_env.update(
        EDITQUEUE_BROKER_URL=f"redis://127.0.0.1:{closed_port()}/0",
        GEMINI_API_KEY="",
        EDITQUEUE_API_BASE_URL=GOOGLE,
    )

    out = stack.cli("init")

    assert out.returncode == 2
    assert out.stdout.splitlines()[0].startswith("FAIL EDITQUEUE_BROKER_URL: redis://127.0.0.1:")
    assert out.stdout.splitlines()[2].startswith("FAIL GEMINI_API_KEY: is empty")
    assert "fix the settings marked FAIL, then run `editqueue init` again" in out.stderr


def test_an_unreachable_s3_endpoint_is_refused_naming_the_store(stack: Stack) -> None:
    """In-process (the worker runs the same function): one quick try, no retries."""
    s3_down = f"http://127.0.0.1:{closed_port()}"
    settings = load_settings(
        store_url=f"s3://{stack.bucket}/x", s3_endpoint_url=s3_down, broker_url="memory://"
    )
    started = time.monotonic()

    finding = store_finding(settings)

    assert not finding.ok and finding.retryable and finding.setting == "EDITQUEUE_STORE_URL"
    assert f"bucket {stack.bucket} at {s3_down}" in finding.detail
    assert "S3 unreachable" in finding.detail
    assert time.monotonic() - started < 10
