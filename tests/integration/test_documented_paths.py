"""The README's paths, walked: the real stack without docker, and the compose emulator profile.

No Docker engine runs here, so the compose profile is walked as its containers would run: each
service's command and environment come from docker-compose.yml itself (its `${VAR:-default}`
resolved as compose resolves it), with only the service host names (redis, minio, emulator)
pointed at this test's redis-server, moto server and emulator process.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from tests.integration.services import BIN, Proc, Stack, free_port, spawn, wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
WALK_TIMEOUT_S = 120
_VAR_RE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def readme_block(heading: str) -> list[str]:
    """The command lines of the first ```sh block after `heading` (comments stripped)."""
    text = (ROOT / "README.md").read_text()
    after = text[text.index(heading) :]
    block = after[after.index("```sh\n") + 6 :]
    block = block[: block.index("```")]
    lines = [line.split("  #")[0].strip() for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def exports(line: str) -> dict[str, str]:
    return dict(word.split("=", 1) for word in shlex.split(line)[1:])


def clean_env() -> dict[str, str]:
    drop = ("EDITQUEUE_", "AWS_", "GEMINI_")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def test_the_readme_stack_without_docker_runs_the_living_room_without_a_key(
    stack: Stack, tmp_path: Path
) -> None:
    """Every line of the README's block, in order; addresses are this test's services."""
    lines = readme_block("### Without docker")
    emulator_port = free_port()
    moved = {
        "127.0.0.1:6379": f"127.0.0.1:{stack.redis_port}",
        "http://127.0.0.1:9000": stack.s3_url,
        "s3://editqueue/prod": f"s3://editqueue/{stack.prefix}",
        "8765": str(emulator_port),
        "examples/": f"{ROOT}/examples/",
    }
    env = {**clean_env(), "PYTHONUNBUFFERED": "1"}
    ran: list[str] = []
    for line in lines:
        for old, new in moved.items():
            line = line.replace(old, new)
        if line.startswith("redis-server"):
            continue  # the test's redis-server is running already
        if line.startswith("export "):
            env.update(exports(line))
            continue
        argv = shlex.split(line.removesuffix("&"))
        assert argv[0] == "editqueue", f"the README runs {argv[0]!r}; walk it here"
        argv[0] = str(BIN / "editqueue")
        ran.append(shlex.join(argv[1:]))
        if line.endswith("&"):
            proc = _background(argv, env, tmp_path, len(ran))
            wait_until(lambda p=proc: _ready(p), 30, line)  # type: ignore[misc]
            continue
        done = subprocess.run(
            argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=WALK_TIMEOUT_S
        )
        assert done.returncode == 0, (line, done.stdout[-2000:], done.stderr[-2000:])
    assert [r.split()[0] for r in ran] == ["emulator", "init", "worker", "submit"]
    assert env["GEMINI_API_KEY"] == ""  # the walk took the no-key path


_started: list[Proc] = []


def _background(argv: list[str], env: dict[str, str], workdir: Path, n: int) -> Proc:
    proc = spawn(argv, workdir / f"bg-{n}.log", env=dict(env))
    _started.append(proc)
    return proc


def _ready(proc: Proc) -> bool:
    out = proc.output()
    assert proc.popen.poll() is None, out[-2000:]
    return "listening on" in out or "ready." in out


@pytest.fixture(autouse=True)
def _stop_background() -> Any:
    yield
    while _started:
        _started.pop().kill()


# --- docker-compose's emulator profile ---------------------------------------------------------


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def resolve(value: str, shell: dict[str, str]) -> str:
    """compose's `${NAME:-default}` interpolation from the shell's environment."""
    return _VAR_RE.sub(lambda m: shell.get(m.group(1)) or (m.group(2) or ""), value)


def service_env(name: str, shell: dict[str, str], hosts: dict[str, str]) -> dict[str, str]:
    env = {}
    for key, value in compose()["services"][name]["environment"].items():
        text = resolve(str(value), shell)
        for host, local in hosts.items():
            text = text.replace(host, local)
        env[key] = text
    return env


def test_the_compose_emulator_profile_runs_a_session_without_a_key(
    stack: Stack, tmp_path: Path
) -> None:
    """The README's `EDITQUEUE_API_BASE_URL=http://emulator:8080 docker-compose --profile
    emulator up -d`, with no GEMINI_API_KEY in the shell: the worker starts before the emulator
    (compose has no ordering for it), waits for it, and the session completes."""
    shell = {"EDITQUEUE_API_BASE_URL": "http://emulator:8080"}  # the README's one variable
    emulator_port = free_port()
    hosts = {
        "redis://redis:6379": f"redis://127.0.0.1:{stack.redis_port}",
        "http://minio:9000": stack.s3_url,
        "http://emulator:8080": f"http://127.0.0.1:{emulator_port}",
        "s3://editqueue/prod": f"s3://editqueue/{stack.prefix}",
    }
    services = compose()["services"]
    worker_env = service_env("worker", shell, hosts)
    assert worker_env["GEMINI_API_KEY"] == ""
    worker_env["EDITQUEUE_BLOB_CACHE_DIR"] = str(tmp_path / "cache")  # the blob-cache volume
    _create_bucket(stack, worker_env)  # what the minio-bucket service does

    worker_cmd = [str(BIN / "editqueue"), *services["worker"]["command"], "-n", "c1@%h"]
    worker = spawn(worker_cmd, tmp_path / "worker.log", env={**clean_env(), **worker_env})
    _started.append(worker)
    time.sleep(2)  # the worker is waiting: no emulator yet
    assert worker.popen.poll() is None, worker.output()[-2000:]
    command = [
        str(emulator_port) if word == "8080" else "127.0.0.1" if word == "0.0.0.0" else word
        for word in services["emulator"]["command"]
    ]
    _started.append(spawn([str(BIN / "editqueue"), *command], tmp_path / "emulator.log"))
    wait_until(lambda: "ready." in worker.output(), 60, "the compose worker")

    spec = tmp_path / "one.yaml"
    spec.write_text("image_size: '512'\nturns:\n  - prompt: a small room\n")
    done = subprocess.run(
        [str(BIN / "editqueue"), "submit", str(spec), "--wait"],
        env={**clean_env(), **worker_env},
        capture_output=True,
        text=True,
        timeout=WALK_TIMEOUT_S,
    )
    assert done.returncode == 0, (done.stderr[-2000:], worker.output()[-2000:])


def _create_bucket(stack: Stack, env: dict[str, str]) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=stack.s3_url,
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    existing = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
    if "editqueue" not in existing:
        s3.create_bucket(Bucket="editqueue")
