"""`editqueue worker` with no options: one threads-pool process per core, one blob cache.

Real processes against the test's redis-server, moto's S3 server and the emulator.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.services import BIN, Stack, spawn, wait_until

pytestmark = pytest.mark.integration

READY_WITHIN_S = 20  # "a few seconds" on an idle machine; the CI machine is shared


def children_of(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


def test_the_default_worker_runs_a_threads_process_per_core_and_stops_them_together(
    stack: Stack, tmp_path: Path
) -> None:
    cores = max(1, os.cpu_count() or 1)
    env = stack.env()
    del env["EDITQUEUE_BLOB_CACHE_DIR"]  # unset: the command makes one for all its processes
    started = time.monotonic()
    proc = spawn([str(BIN / "editqueue"), "worker"], tmp_path / "fleet.log", env=env)
    try:
        wait_until(lambda: proc.output().count("ready.") == cores, READY_WITHIN_S, "fleet")
        ready_s = time.monotonic() - started
        children = children_of(proc.popen.pid)
        commands = [Path(f"/proc/{pid}/cmdline").read_text().split("\0") for pid in children]
        caches = {_env_of(pid)["EDITQUEUE_BLOB_CACHE_DIR"] for pid in children}
        spec = tmp_path / "two.jsonl"
        line = {"image_size": "512", "turns": [{"prompt": "a room"}, {"prompt": "sage walls"}]}
        spec.write_text((json.dumps(line) + "\n") * 2)
        sids = stack.cli("submit", str(spec), "--wait").stdout.split()

        proc.popen.send_signal(signal.SIGTERM)
        code = proc.popen.wait(timeout=60)
    finally:
        proc.kill()

    assert ready_s < READY_WITHIN_S
    assert len(children) == cores
    for argv in commands:
        assert argv[argv.index("--pool") + 1] == "threads", argv
        assert argv[argv.index("--concurrency") + 1] == "16", argv
    assert len({argv[argv.index("-n") + 1] for argv in commands}) == cores  # a name each
    assert len(caches) == 1, caches
    assert len(sids) == 2
    for sid in sids:
        doc = json.loads(stack.cli("status", sid, "--json").stdout)
        assert doc["state"] == "completed", doc
    assert code == 0
    for child in children:
        assert not Path(f"/proc/{child}").exists() or _zombie(child)


def _env_of(pid: int) -> dict[str, str]:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
    return dict(pair.split("=", 1) for pair in pairs if "=" in pair)


def _zombie(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_a_refused_start_stops_every_process_with_exit_2(stack: Stack) -> None:
    env = stack.env()
    env.update(
        GEMINI_API_KEY="", EDITQUEUE_API_BASE_URL="https://generativelanguage.googleapis.com"
    )

    out = subprocess.run(
        [str(BIN / "editqueue"), "worker", "--processes", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert out.returncode == 2
    assert "error: worker not started: GEMINI_API_KEY" in out.stderr
