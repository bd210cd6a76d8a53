"""Real services for integration tests: redis-server, moto's S3 server, the emulator, workers."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll `check` until it is true; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout_s}s")


@dataclass
class Proc:
    """A child process we started and must stop."""

    popen: subprocess.Popen[bytes]
    log: Path

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send a signal to the whole process group."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)
            self.popen.wait(timeout=20)

    def output(self) -> str:
        """What the process wrote so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def spawn(args: list[str], log: Path, env: dict[str, str] | None = None) -> Proc:
    """Start a process in its own group, output to `log`."""
    handle = log.open("wb")
    popen = subprocess.Popen(
        args, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    return Proc(popen, log)


def start_redis(workdir: Path) -> tuple[Proc, int] | None:
    """A private redis-server on a free port, or None when redis-server is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = spawn(args, workdir / f"redis-{port}.log")
    wait_until(lambda: _redis_ping(port), 10, "redis-server")
    return proc, port


def _redis_ping(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")


def start_moto(workdir: Path) -> tuple[Proc, str]:
    """moto's S3 server over HTTP on a free port."""
    port = free_port()
    proc = spawn(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], workdir / "moto.log"
    )
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: requests.get(url, timeout=1).status_code < 500, 20, "moto server")
    return proc, url


def start_emulator(workdir: Path, *extra: str) -> tuple[Proc, str]:
    """The Gemini emulator as a subprocess over HTTP."""
    port = free_port()
    args = [sys.executable, "-m", "emulator", "--port", str(port), *extra]
    proc = spawn(args, workdir / f"emulator-{port}.log")
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: requests.get(f"{url}/healthz", timeout=1).ok, 20, "emulator")
    return proc, url


@dataclass
class Stack:
    """One test's view of the services: its own store prefix and Redis database."""

    workdir: Path
    redis_port: int
    s3_url: str
    emulator_url: str
    bucket: str
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")
    workers: list[Proc] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def broker_url(self) -> str:
        """The Redis URL every process of this test uses."""
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def env(self) -> dict[str, str]:
        """Environment for editqueue processes of this test."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDITQUEUE_")}
        env.update(
            EDITQUEUE_BROKER_URL=self.broker_url,
            EDITQUEUE_STORE_URL=f"s3://{self.bucket}/{self.prefix}",
            EDITQUEUE_S3_ENDPOINT_URL=self.s3_url,
            EDITQUEUE_API_BASE_URL=self.emulator_url,
            EDITQUEUE_API_TIMEOUT_S="5",
            EDITQUEUE_VISIBILITY_TIMEOUT_S="20",
            EDITQUEUE_BACKOFF_BASE_S="0.2",
            EDITQUEUE_BACKOFF_MAX_S="1",
            EDITQUEUE_BLOB_CACHE_DIR=str(self.workdir / f"cache-{uuid.uuid4().hex[:6]}"),
            GEMINI_API_KEY="test-key-do-not-log-7f3a9c",
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def cli(self, *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
        """Run `editqueue ARGS` against this stack."""
        return subprocess.run(
            [str(BIN / "editqueue"), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            cwd=self.workdir,
        )

    def start_worker(self, *args: str) -> Proc:
        """An `editqueue worker` subprocess (threads pool unless args say otherwise)."""
        n = len(self.workers)
        argv = [str(BIN / "editqueue"), "worker", "--processes", "1", "--concurrency", "2", *args]
        argv += ["-n", f"w{n}-{self.prefix}@%h"]
        proc = spawn(argv, self.workdir / f"worker-{n}.log", env=self.env())
        self.workers.append(proc)
        wait_until(lambda: "ready." in proc.output(), 30, f"worker {n}")
        return proc

    def stop(self) -> None:
        """Kill every worker of this test."""
        for proc in self.workers:
            proc.kill()
