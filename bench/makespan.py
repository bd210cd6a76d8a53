"""Makespan of a batch against the ideal and against a plain thread pool, and time to first finish.

SESSIONS sessions x TURNS turns at the emulator's fixed latency, with SLOTS concurrent calls:

- ours: `editqueue worker` processes (threads pool) on real Redis, moto's S3 server and the
  emulator; the batch is submitted through the producer API (validation, S3 writes, enqueues,
  all inside the measured time) and a session is complete when its last `result.json` is
  committed (`committed_at`);
- the peer a user would write: `ThreadPoolExecutor(SLOTS)`, each session a loop of TURNS
  `requests.post` calls re-sending the whole history (every returned model turn, verbatim) from
  memory; no broker, no storage; same emulator, same prompts and sizes.

Figures: efficiency = ideal / makespan, where ideal = SESSIONS x TURNS x latency / SLOTS; ours /
peer makespan; and time until the first session completes, ours / peer. CPU seconds of every
process in each run are printed, because the workers, the emulator and moto share two cores.

    .venv/bin/python bench/makespan.py [--quick] [--processes P --concurrency C]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests
from fleet import API_KEY, Fleet, cpu_of, fleet, jsonl, wait_until

from producer import submission
from producer.parallel import parallel_map
from producer.specs import load_specs
from shared.config import load_settings
from shared.services import build_services

MODEL = "gemini-3.1-flash-image"
ASPECT_RATIO = "1:1"
PROMPTS = (
    "A contemporary living room, large window, white walls, oak floor, grey sofa.",
    "Change wall color to warm sage green (#8FAF8A). Keep all else exactly.",
    "Add a tall walnut bookshelf on the right wall. Preserve all prior elements and colors.",
    "Change lighting to warm evening, floor lamp on. Keep composition and furniture unchanged.",
    "Same scene, no further changes.",
)
TARGET_EFFICIENCY = 0.90
TARGET_PEER_RATIO = 1.10


@dataclass(frozen=True)
class Load:
    """What both runs do."""

    sessions: int
    turns: int
    slots: int
    latency_s: float
    image_size: str

    @property
    def ideal_s(self) -> float:
        """Every call back to back in every slot, nothing else."""
        return self.sessions * self.turns * self.latency_s / self.slots


@dataclass(frozen=True)
class Run:
    """One run's figures (seconds from the start of the run)."""

    makespan_s: float
    first_done_s: float
    median_done_s: float
    cpu_s: dict[str, float]
    submit_s: float  # of the makespan: writing the batch to the store and queueing turn 1s
    calls: int
    statuses: dict[str, int]


def specs(load: Load) -> list[dict[str, Any]]:
    """The batch: the article's five edits (cycled to TURNS); each session's room is its own,
    so no two sessions share an image (the blob store would deduplicate them)."""
    batch = []
    for s in range(load.sessions):
        turns = [{"prompt": PROMPTS[i % len(PROMPTS)]} for i in range(load.turns)]
        turns[0] = {"prompt": f"Room {s}. {turns[0]['prompt']}"}
        batch.append({"aspect_ratio": ASPECT_RATIO, "image_size": load.image_size, "turns": turns})
    return batch


def run_ours(bench: Fleet, load: Load, processes: int, concurrency: int, store: str) -> Run:
    """Workers, Redis, the store: submit the batch and wait for every session's last commit."""
    bench.prefix = f"{store}-{bench.prefix}"
    bench.local_store = store == "local"
    bench.reset_emulator()
    bench.start_workers(processes, concurrency)
    services = build_services(load_settings(**bench.settings_overrides()))
    items = load_specs(jsonl(specs(load), bench.workdir / "batch.jsonl"))
    procs = bench.workers + [c for c in bench.services if store == "s3" or c.name != "s3"]
    cpu_before = cpu_of(procs)
    started = time.time()
    sids = submission.submit_many(services, items)
    submit_s = time.time() - started
    total = load.sessions * load.turns
    wait_until(lambda: bench.emulator_stats()["successes"] >= total, 30 + 3 * load.ideal_s, "calls")
    cpu_after = cpu_of(procs)

    def finished_at(sid: str) -> float | None:
        result = services.repo.result(sid, load.turns)
        return result.committed_at.timestamp() if result else None

    done: list[float | None] = []

    def all_done() -> bool:
        done[:] = parallel_map(finished_at, sids)
        return all(t is not None for t in done)

    wait_until(all_done, 60, "every session's last commit", poll_s=1.0)
    ends = [t - started for t in done if t is not None]
    cpu = {name: cpu_after[name] - cpu_before[name] for name in cpu_after}
    stats = bench.emulator_stats()
    bench.stop_workers()
    ends_s = (max(ends), min(ends), statistics.median(ends))
    return Run(*ends_s, cpu, submit_s, int(stats["total_calls"]), dict(stats["by_status"]))


def peer_session(url: str, spec: dict[str, Any]) -> float:
    """The loop a user would write: history in memory, every call re-sends all of it."""
    contents: list[dict[str, Any]] = []
    config = {
        "responseModalities": ["TEXT", "IMAGE"],
        "imageConfig": {"aspectRatio": spec["aspect_ratio"], "imageSize": spec["image_size"]},
    }
    for turn in spec["turns"]:
        contents.append({"role": "user", "parts": [{"text": turn["prompt"]}]})
        response = requests.post(
            f"{url}/v1beta/models/{MODEL}:generateContent",
            headers={"x-goog-api-key": API_KEY},
            json={"contents": contents, "generationConfig": config},
            timeout=35,
        )
        response.raise_for_status()
        contents.append(response.json()["candidates"][0]["content"])  # signatures and all
    return time.time()


def run_peer(bench: Fleet, load: Load) -> Run:
    """A thread pool of SLOTS over the same sessions, straight at the emulator."""
    procs = [c for c in bench.services if c.name == "emulator"]
    cpu_before = cpu_of(procs) | {"peer": time.process_time()}
    started = time.time()
    with ThreadPoolExecutor(load.slots) as pool:
        done = list(pool.map(lambda s: peer_session(bench.emulator_url, s), specs(load)))
    cpu_after = cpu_of(procs) | {"peer": time.process_time()}
    ends = [t - started for t in done]
    cpu = {name: cpu_after[name] - cpu_before[name] for name in cpu_after}
    stats = bench.emulator_stats()
    ends_s = (max(ends), min(ends), statistics.median(ends))
    return Run(*ends_s, cpu, 0.0, int(stats["total_calls"]), dict(stats["by_status"]))


def show(name: str, run: Run, load: Load) -> None:
    cpu = ", ".join(f"{k} {v:.1f}" for k, v in sorted(run.cpu_s.items()))
    cores = os.cpu_count() or 1
    print(
        f"{name}: makespan {run.makespan_s:.1f} s, first session done {run.first_done_s:.1f} s, "
        f"median session done {run.median_done_s:.1f} s, {run.calls} calls "
        f"(HTTP status: {run.statuses})"
        + (f"; submit took {run.submit_s:.1f} s" if run.submit_s else "")
    )
    used = sum(run.cpu_s.values())
    print(f"    CPU s: {cpu} (total {used:.1f} of {cores * run.makespan_s:.0f} available)")


def compare(name: str, ours: Run, peer: Run, load: Load) -> None:
    efficiency = load.ideal_s / ours.makespan_s
    one_session_s = load.turns * load.latency_s
    print(
        f"{name}: efficiency (ideal / makespan) {efficiency:.3f} (target >= {TARGET_EFFICIENCY}); "
        f"makespan / peer {ours.makespan_s / peer.makespan_s:.3f} (target <= {TARGET_PEER_RATIO}); "
        f"first session done / peer {ours.first_done_s / peer.first_done_s:.3f} "
        f"(/ one session's {load.turns} calls: {ours.first_done_s / one_session_s:.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("BENCH_QUICK")))
    parser.add_argument("--sessions", type=int, help="default 60 (--quick: 30)")
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--processes", type=int, default=2, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=15, help="threads per worker")
    parser.add_argument("--latency-s", type=float, default=2.0)
    parser.add_argument("--image-size", default="512")
    parser.add_argument("--store", choices=["s3", "local", "both"], default="s3")
    args = parser.parse_args()
    load = Load(
        args.sessions or (30 if args.quick else 60),
        args.turns,
        args.processes * args.concurrency,
        args.latency_s,
        args.image_size,
    )
    stores = ["s3", "local"] if args.store == "both" else [args.store]
    print(
        f"makespan: {load.sessions} sessions x {load.turns} turns, emulator latency "
        f"{load.latency_s:g} s, {load.image_size} images ({ASPECT_RATIO}), {load.slots} slots: "
        f"ours {args.processes} x `editqueue worker --processes 1 --concurrency "
        f"{args.concurrency}` (the default threads pool), "
        f"peer ThreadPoolExecutor({load.slots}); ideal {load.ideal_s:.1f} s; "
        f"{os.cpu_count()} cores shared by every process"
    )
    runs: dict[str, Run] = {}
    with fleet(load.latency_s) as bench:
        runs["peer"] = run_peer(bench, load)
        for store in stores:
            runs[store] = run_ours(bench, load, args.processes, args.concurrency, store)
    show("peer (thread pool, history in memory)", runs["peer"], load)
    labels = {"s3": "ours, S3 store (moto server on the same cores)", "local": "ours, local store"}
    for store in stores:
        show(labels[store], runs[store], load)
    print(f"peer: efficiency {load.ideal_s / runs['peer'].makespan_s:.3f}")
    for store in stores:
        compare(labels[store], runs[store], runs["peer"], load)


if __name__ == "__main__":
    main()
