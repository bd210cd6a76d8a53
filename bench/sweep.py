"""The sweep's cost against the store's size: 20 open sessions alone, and beside 10,000 finished.

Both stores live on moto's S3 server. Open sessions are submitted through the producer API (their
turns are not sent, so they stay open); finished sessions are written straight into the store
layout, as a finished session leaves it (`session.json`, turn 1's request and result, and the
summary the sweep writes when it closes a session; no open marker). One pass is
`reconcile(services, now)`, what the workers' periodic sweep runs: the figures are its seconds and
its S3 requests (from moto's request log), best of three, and the ratio big / small store.

    .venv/bin/python bench/sweep.py [--finished N] [--open N]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from fleet import Fleet, fleet, jsonl
from overhead import HeldEnqueues, s3_log

from producer import submission
from producer.specs import load_specs
from shared.config import load_settings
from shared.models import SessionState
from shared.reconcile import reconcile
from shared.services import Services, build_services
from shared.session_index import SessionIndex, StoredSummary
from shared.session_records import SessionRecord
from shared.turn_records import ImageInfo, TurnRequest, TurnResult

TARGET_RATIO = 2.0
WRITERS = 16
SHA = "0" * 64


def services_for(bench: Fleet, prefix: str) -> Services:
    bench.prefix = prefix
    return build_services(load_settings(**bench.settings_overrides()))


def submit_open(services: Services, bench: Fleet, count: int) -> None:
    specs = [{"image_size": "1K", "turns": [{"prompt": f"room {n}"}]} for n in range(count)]
    items = load_specs(jsonl(specs, bench.workdir / "open.jsonl"))
    submission.submit_many(dataclasses.replace(services, enqueuer=HeldEnqueues()), items)


def write_finished(services: Services, count: int) -> None:
    now = datetime.now(UTC)
    image = ImageInfo(blob=SHA, mime_type="image/jpeg", width=1024, height=1024, bytes=1)
    index = SessionIndex(services.repo.store)

    def one(n: int) -> None:
        sid = f"done-{n:06d}"
        services.repo.add_request(sid, TurnRequest(index=1, prompt="a room", created_at=now))
        result = TurnResult(
            index=1,
            parts=[],
            image=image,
            latency_s=20.0,
            attempt=1,
            cost_usd=0.039,
            committed_at=now,
        )
        services.repo.commit_result(sid, result)
        record = SessionRecord(session_id=sid, model="gemini-3.1-flash-image", created_at=now)
        services.repo.create_session(record)
        summary = StoredSummary(
            session_id=sid,
            state=SessionState.COMPLETED,
            model=record.model,
            turns=1,
            turns_succeeded=1,
            cost_usd=0.039,
            updated_at=now,
        )
        index.write_summary(summary)

    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(one, range(count)))


def one_pass(bench: Fleet, services: Services) -> tuple[float, int]:
    """Seconds and S3 requests of one sweep pass over this store (best of three)."""
    best: tuple[float, int] | None = None
    for _ in range(3):
        start_line = len(bench.child("s3").output().splitlines())
        started = time.perf_counter()
        reconcile(services, time.time())
        seconds = time.perf_counter() - started
        time.sleep(0.5)  # moto's log line is written after the answer
        requests = len(s3_log(bench, start_line))
        if best is None or seconds < best[0]:
            best = (seconds, requests)
    assert best is not None
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--finished", type=int, default=10_000)
    parser.add_argument("--open", type=int, default=20)
    args = parser.parse_args()
    print(
        f"sweep: one pass of the workers' sweep (reconcile of the open sessions) over {args.open} "
        f"open sessions, alone and beside {args.finished:,} finished ones; S3 on moto's server"
    )
    with fleet(0.1) as bench:
        small = services_for(bench, "small")
        submit_open(small, bench, args.open)
        big = services_for(bench, "big")
        submit_open(big, bench, args.open)
        started = time.perf_counter()
        write_finished(big, args.finished)
        print(
            f"  wrote {args.finished:,} finished sessions in {time.perf_counter() - started:.0f} s"
        )
        bench.prefix = "small"
        small_s, small_n = one_pass(bench, small)
        bench.prefix = "big"
        big_s, big_n = one_pass(bench, big)
    print(f"  {args.open} open alone: {small_s:.3f} s, {small_n} S3 requests per pass")
    print(f"  {args.open} open + {args.finished:,} finished: {big_s:.3f} s, {big_n} S3 requests")
    print(
        f"sweep ratio (big / small store): {big_s / small_s:.2f} x seconds, "
        f"{big_n / max(1, small_n):.2f} x requests (target <= {TARGET_RATIO:g} x)"
    )


if __name__ == "__main__":
    main()
