"""Real services for the benchmarks: redis-server, moto's S3 server, the emulator and
`editqueue worker` processes, each a child process whose CPU time and peak memory we can read.

Imported by bench/makespan.py, bench/memory.py and bench/overhead.py (run them from the repo root
as `.venv/bin/python bench/NAME.py`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests

BIN = Path(sys.executable).parent
BUCKET = "editqueue-bench"
API_KEY = "bench-key-not-secret"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = 1024


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.1) -> None:
    """Poll `check` until it is true; raise naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(poll_s)
    raise TimeoutError(f"{what} not ready after {timeout_s:.0f}s")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of a process (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / PAGE_KB
    raise RuntimeError(f"no VmHWM for pid {pid}")


def rss_mb(pid: int) -> float:
    """Current resident memory of a process (VmRSS), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / PAGE_KB
    raise RuntimeError(f"no VmRSS for pid {pid}")


@dataclass
class Child:
    """A process we started (in its own group) and must stop."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        """The process id."""
        return self.popen.pid

    def output(self) -> str:
        """What the process wrote so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        """Kill the process group and reap it."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=20)


def spawn(name: str, args: list[str], workdir: Path, env: dict[str, str] | None = None) -> Child:
    """Start `args` in a new process group, output to WORKDIR/NAME.log."""
    log = workdir / f"{name}.log"
    with log.open("wb") as handle:
        popen = subprocess.Popen(
            args, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    return Child(name, popen, log)


@dataclass
class Fleet:
    """Redis, S3 and the emulator for one benchmark, plus the workers it starts."""

    workdir: Path
    redis_port: int
    s3_url: str
    emulator_url: str
    services: list[Child] = field(default_factory=list)
    workers: list[Child] = field(default_factory=list)
    prefix: str = field(default_factory=lambda: f"b{uuid.uuid4().hex[:8]}")
    extra_env: dict[str, str] = field(default_factory=dict)
    local_store: bool = False  # a directory store instead of S3 (no moto on the same cores)

    @property
    def store_url(self) -> str:
        """The store every process of this fleet uses."""
        if self.local_store:
            return f"file://{self.workdir}/store/{self.prefix}"
        return f"s3://{BUCKET}/{self.prefix}"

    @property
    def blob_cache_dir(self) -> Path:
        """The workers' shared local blob cache (one machine, one cache; one per store prefix)."""
        return self.workdir / f"blob-cache-{self.prefix}"

    def env(self) -> dict[str, str]:
        """Environment for editqueue processes."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDITQUEUE_")}
        env.update(
            EDITQUEUE_BROKER_URL=f"redis://127.0.0.1:{self.redis_port}/0",
            EDITQUEUE_STORE_URL=self.store_url,
            EDITQUEUE_S3_ENDPOINT_URL=self.s3_url,
            EDITQUEUE_API_BASE_URL=self.emulator_url,
            EDITQUEUE_BLOB_CACHE_DIR=str(self.blob_cache_dir),
            GEMINI_API_KEY=API_KEY,
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
            AWS_DEFAULT_REGION="us-east-1",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def settings_overrides(self) -> dict[str, Any]:
        """The same configuration for an in-process producer (`load_settings(**...)`)."""
        os.environ.update({k: v for k, v in self.env().items() if k.startswith("AWS_")})
        return {
            "broker_url": f"redis://127.0.0.1:{self.redis_port}/0",
            "store_url": self.store_url,
            "s3_endpoint_url": self.s3_url,
            "api_base_url": self.emulator_url,
            "blob_cache_dir": str(self.workdir / "producer-cache"),
        }

    def start_workers(
        self, processes: int, concurrency: int, *extra: str, own_cache: bool = False
    ) -> list[Child]:
        """`editqueue worker --processes 1 --concurrency C` x P; returns once all are ready.

        The default pool (threads); one command per process so each one's CPU time and memory
        can be read (`editqueue worker --processes P` starts the same processes under one parent).
        With `own_cache`, each process gets its own blob cache, as on separate machines.
        """
        started = []
        for _ in range(processes):
            n = len(self.workers)
            args = [str(BIN / "editqueue"), "worker", "--processes", "1"]
            args += ["--concurrency", str(concurrency), "-n", f"w{n}-{self.prefix}@%h", *extra]
            env = self.env()
            if own_cache:
                env["EDITQUEUE_BLOB_CACHE_DIR"] = f"{self.blob_cache_dir}-{n}"
            child = spawn(f"worker-{n}", args, self.workdir, env=env)
            self.workers.append(child)
            started.append(child)
        for child in started:
            wait_until(lambda c=child: "ready." in c.output(), 60, child.name)  # type: ignore[misc]
        return started

    def stop_workers(self) -> None:
        """Kill every worker."""
        for child in self.workers:
            child.stop()
        self.workers.clear()

    def emulator_stats(self) -> dict[str, Any]:
        """The emulator's call log."""
        reply = requests.get(f"{self.emulator_url}/emulator/stats", timeout=30)
        stats: dict[str, Any] = reply.json()
        return stats

    def reset_emulator(self) -> None:
        """Forget the emulator's call log."""
        requests.post(f"{self.emulator_url}/emulator/reset", timeout=30).raise_for_status()

    def child(self, name: str) -> Child:
        """A service process by name (redis, s3, emulator)."""
        return next(c for c in self.services if c.name == name)


def _redis_ping(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")


def start_emulator(workdir: Path, latency_s: float, *extra: str) -> tuple[Child, str]:
    """The Gemini emulator over HTTP."""
    port = free_port()
    args = [sys.executable, "-m", "emulator", "--port", str(port), "--latency-s", str(latency_s)]
    child = spawn("emulator", [*args, "--seed", "3", *extra], workdir)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: requests.get(f"{url}/healthz", timeout=1).ok, 30, "emulator")
    return child, url


@contextmanager
def fleet(latency_s: float, *emulator_args: str) -> Iterator[Fleet]:
    """Start redis-server, moto's S3 server (with the bucket) and the emulator; stop them after."""
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed (apt-get install redis-server)")
    workdir = Path(tempfile.mkdtemp(prefix="editqueue-bench-"))
    children: list[Child] = []
    try:
        redis_port = free_port()
        args = [binary, "--port", str(redis_port), "--save", "", "--appendonly", "no"]
        children.append(spawn("redis", args, workdir))
        wait_until(lambda: _redis_ping(redis_port), 10, "redis-server")
        s3_port = free_port()
        moto = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(s3_port)]
        unbuffered = {**os.environ, "PYTHONUNBUFFERED": "1"}  # its request log, line by line
        children.append(spawn("s3", moto, workdir, env=unbuffered))
        s3_url = f"http://127.0.0.1:{s3_port}"
        wait_until(lambda: requests.get(s3_url, timeout=1).status_code < 500, 30, "moto")
        s3 = boto3.client(
            "s3",
            endpoint_url=s3_url,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        s3.create_bucket(Bucket=BUCKET)
        emulator, emulator_url = start_emulator(workdir, latency_s, *emulator_args)
        children.append(emulator)
        result = Fleet(workdir, redis_port, s3_url, emulator_url, services=children)
        try:
            yield result
        finally:
            result.stop_workers()
    finally:
        for child in children:
            child.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def cpu_of(children: list[Child]) -> dict[str, float]:
    """CPU seconds of each child, by name."""
    return {c.name: cpu_s(c.pid) for c in children}


def grainy_jpeg(width: int, height: int, seed: int, quality: int = 96) -> bytes:
    """A JPEG with film grain, which compresses like a photo (2752x1536 at 96: ~3.5 MB)."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    gradient = np.linspace(40 + 7 * seed % 90, 200, width, dtype=np.float32)[None, :, None]
    noise = rng.normal(0, 28, (height, width, 3)).astype(np.float32)
    pixels = np.clip(gradient + noise, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=quality)
    return out.getvalue()


def jsonl(lines: list[dict[str, Any]], path: Path) -> Path:
    """Write one JSON document per line."""
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path
