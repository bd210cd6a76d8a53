"""Cost per tier, and what Batch waves cost in S3 and API requests and in time.

The same overnight batch (200 sessions x 5 turns, 512 px, BENCH_QUICK=1: 40 x 3) runs three
times against the emulator over real Redis, moto's S3 server and `editqueue worker` processes:
once per tier (standard, flex with a flex worker, batch through the sweep's batcher). Prints the
spend of each tier and its ratio to standard (measured from the committed results), wall time,
generateContent calls, Batch/Files API requests, S3 requests per committed turn, and for batch
the time of each wave (sent -> finished, and send to the next send).

    .venv/bin/python bench/tiers.py
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import boto3
from fleet import BIN, BUCKET, Fleet, fleet, jsonl, wait_until

QUICK = os.environ.get("BENCH_QUICK") == "1"
SESSIONS, TURNS = (40, 3) if QUICK else (200, 5)
TURNAROUND_S = 2.0
_S3_REQUEST = re.compile(r'"(GET|PUT|HEAD|POST|DELETE) (/\S*) HTTP/1\.\d" (\d{3})')
PROMPTS = [
    "A contemporary living room, empty, morning light.",
    "Change the wall colour to warm sage green (#8FAF8A). Keep all else exactly.",
    "Add a tall walnut bookshelf on the left. Keep all else exactly.",
    "Switch to warm evening light, lamps on. Keep the framing unchanged.",
    "Add a large abstract painting above the sofa. Keep all else exactly.",
]
BATCH_ENV = {
    "EDITQUEUE_SWEEP_INTERVAL_S": "0.5",
    "EDITQUEUE_BATCH_GATHER_S": "1",
    "EDITQUEUE_BATCH_POLL_S": "0.5",
    "EDITQUEUE_BATCH_POLL_MAX_S": "1",
    "EDITQUEUE_FLEX_TIMEOUT_S": "30",
    "EDITQUEUE_FLEX_VISIBILITY_TIMEOUT_S": "120",
}


@dataclass
class TierRun:
    """One tier's figures."""

    tier: str
    turns: int
    spend_usd: float
    wall_s: float
    generate_calls: int
    batch_requests: dict[str, int]
    s3_requests: int
    waves: list[dict[str, Any]]


def s3_requests(bench: Fleet, since: int) -> int:
    """S3 requests moto logged after line `since`."""
    lines = bench.child("s3").output().splitlines()[since:]
    return sum(1 for line in lines if _S3_REQUEST.search(line))


class Watcher:
    """Waits for the run by listing the store (counting its own S3 requests, to leave out)."""

    def __init__(self, bench: Fleet) -> None:
        self.s3 = boto3.client(
            "s3",
            endpoint_url=bench.s3_url,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        self.prefix = f"{bench.prefix}/"
        self.requests = 0

    def _keys(self, prefix: str) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, Prefix=self.prefix + prefix
        )
        keys = []
        for page in pages:
            self.requests += 1
            keys += [item["Key"] for item in page.get("Contents", [])]
        return keys

    def finished(self, turns: int) -> bool:
        """Every turn committed or failed, and no wave open."""
        ended = [
            k for k in self._keys("sessions/") if k.endswith(("/result.json", "/failure.json"))
        ]
        return len(ended) >= turns and not self._keys("waves/open/")


def cli(bench: Fleet, *args: str) -> tuple[str, str]:
    """Run `editqueue ARGS` against the fleet; (stdout, stderr)."""
    import subprocess

    done = subprocess.run(
        [str(BIN / "editqueue"), *args],
        env=bench.env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode not in (0, 1):
        raise RuntimeError(f"editqueue {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done.stdout, done.stderr


def run_tier(base: Fleet, tier: str) -> TierRun:
    """Submit the batch at `tier`, wait until it finished, and read the figures."""
    bench = dataclasses.replace(base, prefix=f"{tier}-{base.prefix}", workers=[])
    bench.start_workers(1, 16)
    if tier == "flex":
        bench.start_workers(1, 16, "--lane", "flex")
    line = {
        "image_size": "512",
        "aspect_ratio": "1:1",
        "turns": [{"prompt": p} for p in PROMPTS[:TURNS]],
    }
    spec = jsonl([line] * SESSIONS, bench.workdir / f"{tier}.jsonl")
    bench.reset_emulator()
    s3_before = len(bench.child("s3").output().splitlines())
    batch_before = Counter(bench.emulator_stats()["batch"]["requests"])
    started = time.monotonic()
    _, err = cli(bench, "submit", str(spec), "--tier", tier)
    found = re.search(r"batch (\S+): \d+ session", err)
    assert found, err
    watcher = Watcher(bench)
    wait_until(lambda: watcher.finished(SESSIONS * TURNS), 3600, f"{tier} batch", poll_s=2.0)
    wall_s = time.monotonic() - started
    s3_count = s3_requests(bench, s3_before) - watcher.requests  # the workers' and submit's
    stats = bench.emulator_stats()
    requests = Counter(stats["batch"]["requests"]) - batch_before
    bench.stop_workers()
    doc = json.loads(cli(bench, "status", "--batch", found.group(1), "--json")[0])
    return TierRun(
        tier=tier,
        turns=int(doc["turns_done"]),
        spend_usd=float(doc["spend_usd"]),
        wall_s=wall_s,
        generate_calls=int(stats["total_calls"]),
        batch_requests=dict(requests),
        s3_requests=s3_count,
        waves=list(doc["waves"]),
    )


def seconds(a: str | None, b: str | None) -> float:
    """Seconds from timestamp a to b (ISO strings)."""
    from datetime import datetime

    if a is None or b is None:
        return float("nan")
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def show(runs: list[TierRun]) -> None:
    """The table, then the waves of the batch run."""
    standard = next(r for r in runs if r.tier == "standard")
    setup = f"512 px, emulator turnaround {TURNAROUND_S:g} s"
    print(f"\n{SESSIONS} sessions x {TURNS} turns per tier ({setup})")
    print(
        f"{'tier':<9} {'turns':>5} {'spend $':>9} {'x std':>6} {'wall s':>7} {'genCont':>7} "
        f"{'batchAPI':>8} {'S3/turn':>7} {'API/turn':>8}"
    )
    for r in runs:
        api = r.generate_calls + sum(r.batch_requests.values())
        ratio = r.spend_usd / standard.spend_usd
        print(
            f"{r.tier:<9} {r.turns:>5} {r.spend_usd:>9.4f} {ratio:>6.3f} "
            f"{r.wall_s:>7.1f} {r.generate_calls:>7} {sum(r.batch_requests.values()):>8} "
            f"{r.s3_requests / max(r.turns, 1):>7.2f} {api / max(r.turns, 1):>8.3f}"
        )
    batch = next(r for r in runs if r.tier == "batch")
    print(f"\nbatch API requests: {dict(sorted(batch.batch_requests.items()))}")
    print(
        f"{'wave':<4} {'lines':>5} {'input':>6} {'sent->finished s':>17} {'send->next send s':>18}"
    )
    for n, wave in enumerate(batch.waves):
        following = batch.waves[n + 1]["sent_at"] if n + 1 < len(batch.waves) else None
        print(
            f"{n + 1:<4} {wave['lines']:>5} {wave['input']:>6} "
            f"{seconds(wave['sent_at'], wave['finished_at']):>17.1f} "
            f"{seconds(wave['sent_at'], following):>18.1f}"
        )
    spans = [seconds(w["sent_at"], w["finished_at"]) for w in batch.waves]
    mean = sum(s - TURNAROUND_S for s in spans) / len(spans)
    print(f"wave overhead past the {TURNAROUND_S:g} s turnaround: mean {mean:.1f} s")


def main() -> None:
    """Run the three tiers on one fleet and print the comparison."""
    with fleet(0.05, "--batch-turnaround-s", str(TURNAROUND_S), "--flex-latency-s", "0.1") as base:
        base.extra_env.update(BATCH_ENV)
        runs = [run_tier(base, tier) for tier in ("standard", "flex", "batch")]
    show(runs)


if __name__ == "__main__":
    main()
