"""Chaos benchmark: a batch under SIGKILLed workers, API faults and a wiped Redis.

Runs SESSIONS x TURNS sessions on WORKERS `editqueue worker` processes against its own
redis-server, moto S3 server (a versioned bucket) and emulator, which injects 429s (with
RetryInfo), 503s and hangs past the API deadline. Every few seconds a random worker is SIGKILLed
(its whole process group) and a new one started; once, mid-run, Redis is wiped (FLUSHALL) and
redis-server restarted empty on the same port. The run ends when every session is terminal
(completed or failed) or after a timeout, then prints:

- sessions completed, turns committed (result.json objects);
- turns lost: requested (request.json) but neither committed nor failed at the end;
- turns committed twice, detected three independent ways (a turn counts once if any fires):
  1. the bucket is versioned, so a second write of a turn's result.json leaves a second
     version: more than one version means the conditional put let two commits through;
  2. each worker logs "turn SID/N committed" only when its conditional put created the object
     (a losing duplicate logs "dup"): two such lines, across every worker log including the
     killed ones, mean two deliveries both believed they committed;
  3. the emulator writes `generation=k parent=<sha256 of the source image>` into every image:
     turn n's committed image must be generation n and derived from exactly the image committed
     for turn n-1, so a turn replaced after its successor was built on it shows as a break;
- paid API calls per committed turn: the emulator's `successes` (calls answered 200 with an
  image, billed whether or not a worker lived to store it) over committed turns;
- kills, and the longest time from a kill to the completion (result.json's `committed_at`) of a
  turn the killed worker had received and not finished (parsed from its log).

    .venv/bin/python bench/chaos.py [--sessions 50] [--turns 5] [--seed 7]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import redis
import requests
from fleet import Child, free_port, spawn, wait_until
from PIL import Image

from shared.s3 import S3Store
from shared.sessions import SessionRepository, SessionSnapshot

BIN = Path(sys.executable).parent
BUCKET = "editqueue-chaos"
API_KEY = "chaos-key-not-a-secret"
PROMPTS = (
    "A contemporary living room, empty, morning light",
    "Change wall color to warm sage green (#8FAF8A). Keep all else exactly.",
    "Add a walnut bookshelf on the left wall",
    "Make it evening light",
    "Add a large plant by the window",
    "Add a wool rug",
    "Add a reading lamp",
)
# Worker settings: a 2 s API deadline makes hangs cheap; the visibility timeout is the smallest
# the worker accepts (2 s + 10 s task margin + 2 s longest countdown), so a killed worker's turn
# comes back in ~15 s; the sweep runs every second and reconciles fully every 30 s.
WORKER_ENV = {
    "EDITQUEUE_API_TIMEOUT_S": "2",
    "EDITQUEUE_VISIBILITY_TIMEOUT_S": "15",
    "EDITQUEUE_BACKOFF_BASE_S": "0.5",
    "EDITQUEUE_BACKOFF_MAX_S": "2",
    "EDITQUEUE_SWEEP_INTERVAL_S": "1",
    "EDITQUEUE_RECONCILE_INTERVAL_S": "30",
}
EMULATOR_ARGS = (
    "--latency-s", "0.5", "--latency-jitter-s", "0.2", "--retry-delay-s", "1", "--hang-s", "3",
    "--fault-rate", "429=0.05", "--fault-rate", "503=0.05", "--fault-rate", "hang=0.02",
)  # fmt: skip
COMMITTED_RE = re.compile(r"turn (\S+)/(\d+) committed \(attempt")
RECEIVED_RE = re.compile(r"run_turn\[([^\]]+)\] received")
FINISHED_RE = re.compile(r"run_turn\[([^\]]+)\] (?:succeeded|raised|retry)")
LINEAGE_RE = re.compile(rb"generation=(\d+) parent=(\w+)")


@dataclass
class Kill:
    """One SIGKILL: when, and the task ids the victim had received but not finished."""

    at: float
    in_flight: list[str]


@dataclass
class Chaos:
    """The services, the fleet and what happened to them."""

    workdir: Path
    args: argparse.Namespace
    rng: random.Random
    procs: list[Child] = field(default_factory=list)
    workers: list[Child] = field(default_factory=list)
    all_workers: list[Child] = field(default_factory=list)
    kills: list[Kill] = field(default_factory=list)
    redis_port: int = 0
    redis_proc: Child | None = None
    s3_url: str = ""
    api_url: str = ""
    prefix: str = "chaos"
    wiped_at: float | None = None
    started_at: float = field(default_factory=time.time)

    # --- services ---

    def start_redis(self) -> None:
        self.redis_port = self.redis_port or free_port()
        argv = ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no"]
        self.redis_proc = spawn(f"redis-{len(self.procs)}", argv, self.workdir)
        self.procs.append(self.redis_proc)
        port = self.redis_port
        wait_until(lambda: redis.Redis(port=port).ping(), 10, "redis-server")

    def start_s3(self) -> None:
        port = free_port()
        argv = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
        self.procs.append(spawn("moto", argv, self.workdir))
        self.s3_url = f"http://127.0.0.1:{port}"
        wait_until(lambda: requests.get(self.s3_url, timeout=1).ok, 30, "moto server")
        s3 = s3_client(self.s3_url)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})

    def start_emulator(self) -> None:
        port = free_port()
        argv = [sys.executable, "-m", "emulator", "--port", str(port), "--api-key", API_KEY]
        argv += ["--seed", str(self.args.seed), *EMULATOR_ARGS]
        self.procs.append(spawn("emulator", argv, self.workdir))
        self.api_url = f"http://127.0.0.1:{port}"
        wait_until(lambda: requests.get(f"{self.api_url}/healthz", timeout=1).ok, 30, "emulator")

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDITQUEUE_")}
        env.update(
            EDITQUEUE_BROKER_URL=f"redis://127.0.0.1:{self.redis_port}/0",
            EDITQUEUE_STORE_URL=f"s3://{BUCKET}/{self.prefix}",
            EDITQUEUE_S3_ENDPOINT_URL=self.s3_url,
            EDITQUEUE_API_BASE_URL=self.api_url,
            GEMINI_API_KEY=API_KEY,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
            PYTHONUNBUFFERED="1",
            **WORKER_ENV,
        )
        return env

    # --- the fleet ---

    def start_worker(self) -> None:
        n = len(self.all_workers)
        argv = [str(BIN / "editqueue"), "worker", "--processes", "1", "--concurrency", "2"]
        argv += ["-n", f"chaos{n}@%h"]
        proc = spawn(f"worker-{n}", argv, self.workdir, self.env())
        self.workers.append(proc)
        self.all_workers.append(proc)

    def kill_one(self) -> None:
        victim = self.rng.choice(self.workers)
        at = time.time()
        victim.stop()
        self.workers.remove(victim)
        self.kills.append(Kill(at, in_flight(victim.log.read_text(errors="replace"))))
        self.start_worker()

    def wipe_redis(self) -> None:
        """FLUSHALL, then kill redis-server and start an empty one on the same port."""
        redis.Redis(port=self.redis_port).flushall()
        assert self.redis_proc is not None
        self.redis_proc.stop()
        self.wiped_at = time.time()
        self.start_redis()

    def submit(self) -> list[str]:
        lines = []
        for s in range(self.args.sessions):
            sid = f"chaos-{s:03d}"
            prompts = [f"[{sid}] {PROMPTS[t % len(PROMPTS)]}" for t in range(self.args.turns)]
            spec = {"session_id": sid, "image_size": "512", "aspect_ratio": "16:9"}
            lines.append(json.dumps({**spec, "turns": [{"prompt": p} for p in prompts]}))
        batch = self.workdir / "batch.jsonl"
        batch.write_text("\n".join(lines) + "\n")
        out = subprocess.run(
            [str(BIN / "editqueue"), "submit", str(batch)],
            env=self.env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise SystemExit(f"chaos: submit failed: {out.stderr}")
        return out.stdout.split()

    def stop(self) -> None:
        for proc in [*self.all_workers, *self.procs]:
            proc.stop()


def in_flight(log: str) -> list[str]:
    """Task ids a worker received more often than it finished them."""
    received = Counter(RECEIVED_RE.findall(log))
    received.subtract(Counter(FINISHED_RE.findall(log)))
    return sorted(task for task, left in received.items() if left > 0)


def s3_client(url: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def progress(chaos: Chaos, turns: int) -> tuple[int, int, int]:
    """(results, sessions terminal, sessions) from one listing of the store."""
    results: Counter[str] = Counter()
    failed: set[str] = set()
    sessions: set[str] = set()
    s3 = s3_client(chaos.s3_url)
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, Prefix=f"{chaos.prefix}/sessions/"
    ):
        for obj in page.get("Contents", []):
            parts = obj["Key"].split("/")
            sid, name = parts[2], parts[-1]
            sessions.add(sid)
            if name == "result.json":
                results[sid] += 1
            elif name == "failure.json":
                failed.add(sid)
    terminal = sum(1 for sid in sessions if results[sid] >= turns or sid in failed)
    return sum(results.values()), terminal, len(sessions)


def drive(chaos: Chaos, sids: list[str]) -> float:
    """Kill, restart and wipe until every session is terminal; returns the elapsed seconds."""
    args = chaos.args
    total_turns = len(sids) * args.turns
    start = time.monotonic()
    next_kill = start + chaos.rng.uniform(*args.kill_every_s)
    last_print = 0.0
    while True:
        now = time.monotonic()
        committed, terminal, _ = progress(chaos, args.turns)
        if terminal == len(sids):
            return now - start
        if now - start > args.timeout_s:
            print(f"chaos: timed out after {args.timeout_s:.0f}s", file=sys.stderr)
            return now - start
        if chaos.wiped_at is None and committed >= args.wipe_at * total_turns:
            chaos.wipe_redis()
            print(f"  t={now - start:5.1f}s  Redis wiped and restarted ({committed} committed)")
        if now >= next_kill:
            chaos.kill_one()
            next_kill = now + chaos.rng.uniform(*args.kill_every_s)
        if now - last_print >= 10:
            print(f"  t={now - start:5.1f}s  {committed}/{total_turns} turns committed, "
                  f"{terminal} sessions terminal, {len(chaos.kills)} kills")  # fmt: skip
            last_print = now
        time.sleep(0.5)


@dataclass
class Verdict:
    """What the store, the logs and the emulator say after the run."""

    completed: int = 0
    failed: int = 0
    committed: int = 0
    lost: list[str] = field(default_factory=list)
    versions_twice: set[str] = field(default_factory=set)
    logged_twice: set[str] = field(default_factory=set)
    lineage_breaks: set[str] = field(default_factory=set)
    completion: dict[str, float] = field(default_factory=dict)  # "sid:n" -> committed_at

    @property
    def twice(self) -> set[str]:
        return self.versions_twice | self.logged_twice | self.lineage_breaks


def result_versions(chaos: Chaos) -> Counter[str]:
    counts: Counter[str] = Counter()
    s3 = s3_client(chaos.s3_url)
    for page in s3.get_paginator("list_object_versions").paginate(
        Bucket=BUCKET, Prefix=f"{chaos.prefix}/sessions/"
    ):
        for version in page.get("Versions", []):
            parts = version["Key"].split("/")
            if parts[-1] == "result.json":
                counts[f"{parts[2]}:{int(parts[4])}"] += 1
    return counts


def check_lineage(store: S3Store, snap: SessionSnapshot, verdict: Verdict) -> None:
    parent = b"none"
    sid = snap.record.session_id
    for index in sorted(snap.results):
        data = store.get(f"blobs/sha256/{snap.results[index].image.blob}")
        comment = Image.open(io.BytesIO(data)).info.get("comment", b"")
        match = LINEAGE_RE.search(comment if isinstance(comment, bytes) else comment.encode())
        if match is None or (int(match.group(1)), match.group(2)) != (index, parent):
            verdict.lineage_breaks.add(f"{sid}:{index}")
        parent = snap.results[index].image.blob.encode()


def judge(chaos: Chaos, sids: list[str]) -> Verdict:
    store = S3Store(BUCKET, chaos.prefix, endpoint_url=chaos.s3_url)
    repo = SessionRepository(store)
    verdict = Verdict()
    for sid in sids:
        snap = repo.snapshot(sid)
        failed = any(
            f.request_revision == snap.requests[n].revision for n, f in snap.failures.items()
        )
        verdict.committed += len(snap.results)
        verdict.completed += set(snap.results) == set(snap.requests)
        verdict.failed += failed
        if not failed:
            verdict.lost += [f"{sid}:{n}" for n in snap.requests if n not in snap.results]
        for n, result in snap.results.items():
            verdict.completion[f"{sid}:{n}"] = result.committed_at.timestamp()
        check_lineage(store, snap, verdict)
    versions = result_versions(chaos)
    if sum(versions.values()) < verdict.committed:  # the check below would prove nothing
        raise SystemExit("chaos: the bucket's version listing misses committed results")
    verdict.versions_twice = {k for k, v in versions.items() if v > 1}
    logs = "\n".join(p.log.read_text(errors="replace") for p in chaos.all_workers)
    won = Counter(f"{sid}:{int(n)}" for sid, n in COMMITTED_RE.findall(logs))
    verdict.logged_twice = {k for k, v in won.items() if v > 1}
    return verdict


def longest_recovery_s(chaos: Chaos, verdict: Verdict) -> tuple[float, str]:
    """The longest kill -> completion of a turn the victim held (0 when it had committed)."""
    worst, which = 0.0, "-"
    for kill in chaos.kills:
        for task in kill.in_flight:
            sid, index, _attempt = task.rsplit(":", 2)
            done = verdict.completion.get(f"{sid}:{int(index)}")
            if done is not None and done - kill.at > worst:
                worst, which = done - kill.at, f"{sid} turn {int(index)}"
    return worst, which


def report(chaos: Chaos, sids: list[str], elapsed_s: float) -> bool:
    verdict = judge(chaos, sids)
    stats = requests.get(f"{chaos.api_url}/emulator/stats", timeout=10).json()
    paid = int(stats["successes"])
    worst, which = longest_recovery_s(chaos, verdict)
    faults = {k: v for k, v in sorted(stats["by_outcome"].items()) if k != "ok"}
    ratio = paid / verdict.committed if verdict.committed else float("inf")
    wiped = f"at t={chaos.wiped_at - chaos.started_at:.0f}s" if chaos.wiped_at else "never"
    a = chaos.args
    print(
        f"chaos: {len(sids)} sessions x {a.turns} turns, {a.workers} workers, "
        f"a SIGKILL every {a.kill_every_s[0]:g}-{a.kill_every_s[1]:g}s, seed {a.seed}\n"
        f"sessions completed        {verdict.completed}/{len(sids)}"
        f" ({verdict.failed} failed)\n"
        f"turns committed           {verdict.committed}/{len(sids) * a.turns}\n"
        f"turns lost                {len(verdict.lost)}"
        f"{' ' + ', '.join(verdict.lost[:8]) if verdict.lost else ''}\n"
        f"turns committed twice     {len(verdict.twice)}  (result.json with >1 version: "
        f"{len(verdict.versions_twice)}, two 'committed' logs: {len(verdict.logged_twice)}, "
        f"lineage breaks: {len(verdict.lineage_breaks)})\n"
        f"paid API calls            {paid} = {ratio:.3f} per committed turn\n"
        f"kills                     {len(chaos.kills)} (Redis wiped and restarted: {wiped})\n"
        f"longest kill -> completion {worst:.1f}s ({which})\n"
        f"API faults injected       {json.dumps(faults)}\n"
        f"{cut_short(stats, chaos.kills)}"
        f"elapsed                   {elapsed_s:.0f}s"
    )
    return (
        verdict.completed == len(sids)
        and not verdict.lost
        and not verdict.twice
        and ratio <= a.max_paid_ratio
    )


def cut_short(stats: dict[str, Any], kills: list[Kill]) -> str:
    """A line on calls the emulator refused as invalid: bodies cut short by a SIGKILL."""
    invalid = [c for c in stats["calls"] if c["outcome"] == "invalid"]
    if not invalid:
        return ""
    near = sum(1 for c in invalid if any(abs((c["end"] or 0) - k.at) < 1.5 for k in kills))
    return (
        f"invalid API requests      {len(invalid)} ({near} ended within 1.5 s of a kill: "
        "request bodies cut short mid-upload)\n"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--kill-every-s", type=float, nargs=2, default=(4.0, 8.0))
    parser.add_argument("--wipe-at", type=float, default=0.4, help="share of turns committed")
    parser.add_argument("--timeout-s", type=float, default=900.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-paid-ratio", type=float, default=1.15)
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs)")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if shutil.which("redis-server") is None:
        raise SystemExit("chaos: redis-server is not installed (apt-get install redis-server)")
    os.environ.update(  # for this process's own S3 reads
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    workdir = Path(tempfile.mkdtemp(prefix="editqueue-chaos-"))
    chaos = Chaos(workdir, args, random.Random(args.seed))
    try:
        chaos.start_redis()
        chaos.start_s3()
        chaos.start_emulator()
        for _ in range(args.workers):
            chaos.start_worker()
        sids = chaos.submit()
        chaos.started_at = time.time()
        print(f"chaos: submitted {len(sids)} sessions; logs in {workdir}")
        elapsed = drive(chaos, sids)
        for proc in chaos.workers:
            proc.stop()
        ok = report(chaos, sids, elapsed)
    finally:
        chaos.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print("chaos: PASS" if ok else "chaos: FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
