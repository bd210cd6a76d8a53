"""How fast a 1,000-session batch is submitted: validation, parallel writes, then the enqueues.

Submits a generated JSONL (SESSIONS sessions x TURNS turns, i.e. SESSIONS x (TURNS + 1) objects
plus the batch manifest) to:

- a local directory store and to moto's S3 server (ThreadedMotoServer, conditional puts over
  HTTP), each with the broker either real (a `redis-server` started on a free port, Celery
  enqueues and the Redis live index) or mocked (enqueues dropped, in-memory index);
- the `editqueue submit` command in a new process (imports and all), on the same stores.

Prints each phase (parse + validate, writes, enqueues), sessions per second, the client's CPU
time, the time `status --batch` then takes to read the whole batch, and, for S3, the measured
latency of one conditional put and what writing every object one after another would take.

    .venv/bin/python bench/submit_batch.py [--sessions N] [--turns N]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from producer import batch, submission
from producer.manifest import generate_batch_id
from producer.specs import load_specs
from shared.config import load_settings
from shared.coordination import MemoryCoordinator
from shared.s3 import S3Store
from shared.services import Services, build_services

PROMPTS = (
    "A contemporary living room, large window, white walls, oak floor, grey sofa.",
    "Change wall color to warm sage green (#8FAF8A). Keep all else exactly.",
    "Add a tall walnut bookshelf on the left wall. Keep all else exactly.",
    "Switch the lighting to a warm evening glow. Preserve all prior elements.",
    "Generate same scene at 4K resolution, no further changes.",
)
BUCKET = "editqueue-bench"
PUT_PROBES = 200
EDITQUEUE = Path(sys.executable).parent / "editqueue"


def write_jsonl(path: Path, sessions: int, turns: int) -> None:
    """One session per line, TURNS turns each (the article's prompts, cycled)."""
    line = {
        "aspect_ratio": "16:9",
        "image_size": "2K",
        "turns": [{"prompt": PROMPTS[i % len(PROMPTS)]} for i in range(turns)],
    }
    path.write_text((json.dumps(line) + "\n") * sessions)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout_s}s")


@contextmanager
def redis_server() -> Iterator[str | None]:
    """A throwaway redis-server's URL, or None when the binary is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = free_port()
    args = [binary, "--port", str(port), "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


MOTO_SERVER = """
import logging, sys, threading
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.ERROR)
ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False).start()
threading.Event().wait()
"""


@contextmanager
def moto_s3() -> Iterator[str]:
    """moto's S3 server (ThreadedMotoServer) in a child process, so it does not share our GIL."""
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "bench"),
        ("AWS_SECRET_ACCESS_KEY", "bench"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        os.environ.setdefault(name, value)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", MOTO_SERVER, str(port)])
    try:
        _wait_for_port(port, timeout_s=30.0)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@dataclass
class FirstCallClock:
    """Passes enqueues on (or drops them) and notes when the first one came."""

    inner: object | None
    first_at: float | None = None

    def enqueue_turn(
        self, sid: str, index: int, *, attempt: int = 1, countdown_s: float = 0
    ) -> None:
        if self.first_at is None:
            self.first_at = time.perf_counter()
        if self.inner is not None:
            self.inner.enqueue_turn(sid, index, attempt=attempt, countdown_s=countdown_s)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Target:
    """Where a run writes: a store URL (and S3 endpoint) and a broker URL (None: mocked)."""

    name: str
    store_url: str
    endpoint: str | None
    broker_url: str | None

    @property
    def bucket(self) -> str:
        """The S3 bucket of an s3:// store URL."""
        return self.store_url.removeprefix("s3://").split("/", 1)[0]

    def env(self) -> dict[str, str]:
        env = {**os.environ, "EDITQUEUE_STORE_URL": self.store_url}
        env["EDITQUEUE_BROKER_URL"] = self.broker_url or "memory://"
        if self.endpoint:
            env["EDITQUEUE_S3_ENDPOINT_URL"] = self.endpoint
        return env


def services_for(target: Target, clock: FirstCallClock) -> Services:
    settings = load_settings(
        store_url=target.store_url,
        broker_url=target.broker_url or "memory://",
        s3_endpoint_url=target.endpoint,
    )
    if target.broker_url is None:
        return build_services(settings, coord=MemoryCoordinator(), enqueuer=clock)
    services = build_services(settings)
    clock.inner = services.enqueuer
    return dataclasses.replace(services, enqueuer=clock)


def in_process(target: Target, spec: Path) -> dict[str, float]:
    """Phases of one submit through the Python API (what the CLI runs after its imports)."""
    clock = FirstCallClock(None)
    services = services_for(target, clock)
    cpu_start = time.process_time()
    start = time.perf_counter()
    items = load_specs(spec, default_model=services.settings.model)
    loaded = time.perf_counter()
    batch_id = generate_batch_id()
    submission.submit_many(services, items, batch_id=batch_id, budget_usd=100.0)
    end = time.perf_counter()
    first = clock.first_at or end
    cpu = time.process_time() - cpu_start
    batch.status(services, batch_id)  # what `status --batch` reads: every session, in parallel
    status_s = time.perf_counter() - end
    status_cpu_s = time.process_time() - cpu_start - cpu
    return {
        "validate": loaded - start,
        "write": first - loaded,
        "enqueue": end - first,
        "total": end - start,
        "cpu": cpu,
        "status": status_s,
        "status_cpu": status_cpu_s,
    }


def cli(target: Target, spec: Path) -> float:
    """Wall time of `editqueue submit SPEC` in a new process."""
    start = time.perf_counter()
    subprocess.run(
        [str(EDITQUEUE), "submit", str(spec)],
        env=target.env(),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def put_latency_s(endpoint: str) -> float:
    """The mean time of PUT_PROBES serial conditional puts of a small JSON object."""
    store = S3Store(f"{BUCKET}-probe", "", endpoint_url=endpoint)
    store.ensure_bucket()
    body = b'{"index": 1, "prompt": "' + b"x" * 120 + b'"}'
    start = time.perf_counter()
    for n in range(PUT_PROBES):
        store.put_if_absent(f"{n}.json", body)
    return (time.perf_counter() - start) / PUT_PROBES


def list_latency_s(target: Target) -> float:
    """The mean time of listing one session's keys in the target's bucket (PUT_PROBES lists)."""
    store = S3Store(target.bucket, "", endpoint_url=target.endpoint)
    first = next(key for key in store.list("") if "/sessions/" in key)
    prefix = "/".join(first.split("/")[:3]) + "/"  # `<broker>/sessions/<sid>/`
    start = time.perf_counter()
    for _ in range(PUT_PROBES // 10):
        list(store.list(prefix))
    return (time.perf_counter() - start) / (PUT_PROBES // 10)


def report(label: str, phases: dict[str, float], sessions: int) -> None:
    print(
        f"  {label:<28} validate {phases['validate']:5.2f} s  write {phases['write']:5.2f} s  "
        f"enqueue {phases['enqueue']:5.2f} s  total {phases['total']:5.2f} s  "
        f"{sessions / phases['total']:5.0f} sessions/s  (client CPU {phases['cpu']:4.2f} s)  "
        f"then status --batch {phases['status']:5.2f} s (CPU {phases['status_cpu']:4.2f} s)"
    )


def targets(root: Path, endpoint: str, redis_url: str | None) -> list[Target]:
    brokers: list[tuple[str, str | None]] = [("mocked", None)]
    if redis_url:
        brokers.insert(0, ("redis", redis_url))
    found = []
    for broker, url in brokers:
        found.append(Target(f"local dir + {broker}", f"file://{root}/{broker}", None, url))
        bucket = f"{BUCKET}-{root.name.lower()}-{broker}"  # one bucket each: moto lists scan all
        found.append(Target(f"moto S3 + {broker}", f"s3://{bucket}/{broker}", endpoint, url))
    for target in found:
        if target.endpoint:
            S3Store(target.bucket, "", endpoint_url=target.endpoint).ensure_bucket()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--turns", type=int, default=5)
    args = parser.parse_args()
    objects = args.sessions * (args.turns + 1) + 1
    with tempfile.TemporaryDirectory() as tmp, moto_s3() as endpoint, redis_server() as redis:
        spec = Path(tmp) / "batch.jsonl"
        write_jsonl(spec, args.sessions, args.turns)
        print(f"submit {args.sessions} sessions x {args.turns} turns ({objects} objects)")
        if redis is None:
            print("  (redis-server not installed: only the mocked broker is measured)")
        print("in process (producer.submission.submit_many):")
        measured = targets(Path(tmp) / "api", endpoint, redis)
        for target in measured:
            report(target.name, in_process(target, spec), args.sessions)
        print("editqueue submit in a new process (wall time, imports included):")
        for target in targets(Path(tmp) / "cli", endpoint, redis):
            wall_s = cli(target, spec)
            print(f"  {target.name:<28} {wall_s:5.2f} s  {args.sessions / wall_s:6.0f} sessions/s")
        latency = put_latency_s(endpoint)
        print(
            f"moto S3 conditional put: {latency * 1000:.1f} ms each; writing the {objects} objects "
            f"one after another would take {latency * objects:.1f} s"
        )
        s3 = next(t for t in measured if t.endpoint)
        print(
            f"moto S3 listing of one session with {objects} keys in the bucket: "
            f"{list_latency_s(s3) * 1000:.1f} ms (moto scans the whole bucket for each listing)"
        )


if __name__ == "__main__":
    main()
