"""What a turn costs the worker besides the API: CPU time, and S3 requests and bytes read.

SESSIONS sessions x TURNS turns (2K, 16:9, the article's edits; turn 1 edits a grainy ~3 MB
photo, so every answer is photo-sized like the real API's 2K JPEGs) run through `editqueue
worker` processes on real Redis, moto's S3 server and the emulator. Worker CPU is utime + stime from
/proc/PID/stat of every worker process, before and after the batch, divided by the turns: a
thread blocked on the API uses none, so the wait is excluded by construction (what remains is
loading history, streaming the request body, parsing the answer, storing blobs, the quality
signals, Celery and Redis). S3 traffic comes from moto's request log (every request, by verb);
bytes read are the sizes of the objects each GET fetched.

The workers' sweeper is slowed down (EDITQUEUE_SWEEP_INTERVAL_S) so its reconcile of the open
sessions does not land in one run and not the other; its cost is measured on its own: the pass
right after the batch (which reads each session once and closes it in the session index) and
the pass after that (only the open index: nothing is open).

Two fleets: one machine (the workers share one blob cache, so history images committed there
are read locally) and separate machines (each worker its own cache, so history committed by the
other worker is downloaded once).

    .venv/bin/python bench/overhead.py [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import boto3
from fleet import BUCKET, Child, Fleet, cpu_of, fleet, grainy_jpeg, jsonl, wait_until

from producer.sessions import reconcile
from producer.specs import load_specs
from producer.submission import submit_many
from shared.broker import dispatch
from shared.config import load_settings
from shared.services import build_services

PROMPTS = (
    "A contemporary living room, large window, white walls, oak floor, grey sofa.",
    "Change wall color to warm sage green (#8FAF8A). Keep all else exactly.",
    "Add a tall walnut bookshelf on the right wall. Preserve all prior elements and colors.",
    "Change lighting to warm evening, floor lamp on. Keep composition and furniture unchanged.",
    "Same scene, no further changes.",
)
_REQUEST = re.compile(r'"(GET|HEAD|PUT|POST|DELETE) (/[^ ]*) HTTP/1\.1" (\d+)')
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Overhead:
    """One fleet's figures, per turn."""

    turns: int
    cpu_ms: float
    requests: Counter[str]
    get_bytes: int
    blob_get_bytes: int
    image_bytes: float
    closing_per_session: float
    later_pass_requests: int


def s3_log(bench: Fleet, since: int) -> list[tuple[str, str, int]]:
    """(verb, path, status) of every S3 request after line `since` of moto's log."""
    lines = bench.child("s3").output().splitlines()[since:]
    found = (_REQUEST.search(_ANSI.sub("", line)) for line in lines)
    return [(m.group(1), m.group(2), int(m.group(3))) for m in found if m]


def object_sizes(bench: Fleet) -> dict[str, int]:
    """Every object's size, by request path (`/bucket/key`)."""
    s3 = boto3.client(
        "s3",
        endpoint_url=bench.s3_url,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )
    sizes = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            sizes[f"/{BUCKET}/{item['Key']}"] = int(item["Size"])
    return sizes


def kind(verb: str, path: str) -> str:
    """A request's verb and what it touched (`GET request.json`, `PUT blob`, `LIST`...)."""
    if verb == "GET" and "list-type" in path:
        return "LIST"
    name = path.split("?")[0].rsplit("/", 1)[-1]
    return f"{verb} {'blob' if '/blobs/' in path else name}"


class HeldEnqueues:
    """An enqueuer that only notes which turns were sent."""

    def __init__(self) -> None:
        self.turns: list[tuple[str, int]] = []

    def enqueue_turn(
        self, sid: str, index: int, *, attempt: int = 1, countdown_s: float = 0
    ) -> None:
        self.turns.append((sid, index))


def committed(workers: list[Child]) -> int:
    """Turns the workers committed, from Celery's log of each task's return value."""
    return sum(w.output().count("'committed'") for w in workers)


def run(bench: Fleet, sessions: int, turns: int, own_cache: bool) -> Overhead:
    bench.prefix = f"{'machines' if own_cache else 'machine'}-{bench.prefix}"
    bench.extra_env["EDITQUEUE_SWEEP_INTERVAL_S"] = "3600"
    workers = bench.start_workers(2, 10, own_cache=own_cache)
    services = build_services(load_settings(**bench.settings_overrides()))
    batch = [
        {
            "aspect_ratio": "16:9",
            "image_size": "2K",
            "turns": [{"prompt": f"Room {s}. {PROMPTS[0]}"}]
            + [{"prompt": PROMPTS[i % len(PROMPTS)]} for i in range(1, turns)],
        }
        for s in range(sessions)
    ]
    photo = bench.workdir / "empty-room.jpg"
    photo.write_bytes(grainy_jpeg(2752, 1536, seed=1, quality=92))
    for spec in batch:
        spec["turns"][0]["images"] = [str(photo)]
    items = load_specs(jsonl(batch, bench.workdir / f"{bench.prefix}.jsonl"))
    held = HeldEnqueues()  # write the batch first, then start it: submit's requests apart
    sids = submit_many(dataclasses.replace(services, enqueuer=held), items)
    log_start = len(bench.child("s3").output().splitlines())
    cpu_before = cpu_of(workers)
    for sid, index in held.turns:
        dispatch(services, sid, index)
    total = sessions * turns
    # The workers' logs, not the store: polling S3 here would show up in its request log.
    wait_until(lambda: committed(workers) >= total, 600, "every turn committed", 0.5)
    cpu_after = cpu_of(workers)
    requests = s3_log(bench, log_start)
    unfinished = [sid for sid in sids if not services.repo.is_committed(sid, turns)]
    assert not unfinished, f"{len(unfinished)} sessions did not finish"
    bench.stop_workers()
    reconcile_start = len(bench.child("s3").output().splitlines())
    reconcile(services)  # the sweep's pass: closes the finished sessions in the index
    closing_requests = len(s3_log(bench, reconcile_start))
    reconcile_start = len(bench.child("s3").output().splitlines())
    reconcile(services)  # every later pass: nothing is open
    reconcile_requests = len(s3_log(bench, reconcile_start))
    sizes = object_sizes(bench)
    gets = [
        path.split("?")[0] for verb, path, status in requests if verb == "GET" and status == 200
    ]
    total = sessions * turns
    images = [sizes[p] for p in sizes if "/blobs/" in p and bench.prefix in p]
    return Overhead(
        turns=total,
        cpu_ms=1000 * sum(cpu_after[k] - cpu_before[k] for k in cpu_after) / total,
        requests=Counter(kind(verb, path) for verb, path, _ in requests),
        get_bytes=sum(sizes.get(p, 0) for p in gets),
        blob_get_bytes=sum(sizes.get(p, 0) for p in gets if "/blobs/" in p),
        image_bytes=sum(images) / max(1, len(images)),
        closing_per_session=closing_requests / sessions,
        later_pass_requests=reconcile_requests,
    )


def show(name: str, result: Overhead) -> None:
    per_turn = {k: v / result.turns for k, v in sorted(result.requests.items())}
    listing = ", ".join(f"{k} {v:.2f}" for k, v in per_turn.items())
    print(
        f"{name}: worker CPU per turn {result.cpu_ms:.1f} ms; S3 per turn: "
        f"{sum(per_turn.values()):.1f} requests, {result.get_bytes / result.turns / 1024:.1f} KiB "
        f"read ({result.blob_get_bytes / result.turns / 1024:.1f} KiB of it history images, "
        f"an image being {result.image_bytes / 1024:.0f} KiB)"
    )
    print(f"    requests per turn: {listing}")
    print(
        f"    the sweep's pass after the batch: {result.closing_per_session:.1f} requests per "
        f"session (reads each once and closes it in the index); every later pass: "
        f"{result.later_pass_requests} requests in all"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("BENCH_QUICK")))
    parser.add_argument("--sessions", type=int, help="default 40 (--quick: 16)")
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--latency-s", type=float, default=0.5)
    args = parser.parse_args()
    sessions = args.sessions or (16 if args.quick else 40)
    print(
        f"overhead: {sessions} sessions x {args.turns} turns at 2K 16:9, 2 worker processes x "
        f"10 threads, S3 on moto's server, emulator latency {args.latency_s:g} s; "
        f"{Path('/proc/cpuinfo').read_text().count('processor')} cores"
    )
    with fleet(args.latency_s) as bench:
        machine = run(bench, sessions, args.turns, own_cache=False)
        machines = run(bench, sessions, args.turns, own_cache=True)
    show("one machine (shared blob cache)", machine)
    show("two machines (a blob cache each)", machines)


if __name__ == "__main__":
    main()
