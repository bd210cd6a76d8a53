"""Recovery from a dead worker: SIGKILL the worker running a turn; seconds until that turn commits.

Two `editqueue worker` processes (default settings: the broker's visibility timeout is 300 s) on
real Redis, moto's S3 server and the emulator (3 s latency). One session of one 1K turn is
submitted; once the turn is running, the worker that received it is SIGKILLed. The figure is the
time from the kill to the turn's `committed_at`, against the visibility timeout, which is when
the broker alone would have handed the turn back. The states `status` showed meanwhile are
printed too (a turn whose heartbeat stopped shows as `retrying`, never `running`).

    .venv/bin/python bench/recovery.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
from datetime import UTC, datetime

from fleet import Fleet, fleet, jsonl, wait_until

from producer import sessions, submission
from producer.specs import load_specs
from shared.config import load_settings
from shared.services import build_services

TARGET_S = 30.0
LATENCY_S = 3.0


def one_kill(bench: Fleet, run: int) -> tuple[float, set[str], float, int]:
    """(seconds from kill to commit, states seen, possibly billed USD, attempt that committed)."""
    bench.prefix = f"r{run}-{bench.prefix}"
    bench.start_workers(2, 4)
    services = build_services(load_settings(**bench.settings_overrides()))
    spec = {"image_size": "1K", "turns": [{"prompt": f"Room {run}. A living room."}]}
    [sid] = submission.submit_many(services, load_specs(jsonl([spec], bench.workdir / "one.jsonl")))
    seen: set[str] = set()

    def state() -> str:
        value = sessions.session_status(services, sid).turns[0].state.value
        seen.add(value)
        return value

    wait_until(lambda: state() == "running", 30, "turn running", 0.05)
    task = f"{sid}:0001:1"
    victim = next(w for w in bench.workers if task in w.output())
    killed = datetime.now(UTC)
    victim.stop()  # SIGKILL, process group
    bench.workers.remove(victim)
    wait_until(lambda: state() == "succeeded", 600, "the turn committed", 0.2)
    doc = sessions.session_status(services, sid)
    result = services.repo.result(sid, 1)
    assert result is not None
    bench.stop_workers()
    return (
        (result.committed_at - killed).total_seconds(),
        seen,
        doc.possibly_billed_usd,
        result.attempt,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    settings = load_settings()
    print(
        f"recovery: SIGKILL the worker running a turn ({LATENCY_S:g} s API latency), 2 default "
        f"workers; visibility timeout {settings.visibility_timeout_s} s, lease "
        f"{settings.lease_ttl_s:g} s renewed every {settings.lease_ttl_s / 3:g} s"
    )
    times = []
    with fleet(LATENCY_S) as bench:
        for run in range(args.runs):
            seconds, seen, billed, attempt = one_kill(bench, run)
            times.append(seconds)
            print(
                f"  run {run + 1}: committed {seconds:.1f} s after the kill (attempt {attempt}); "
                f"status showed {sorted(seen)}; possibly billed ${billed:.4f}"
            )
    worst = max(times)
    print(
        f"recovery: median {statistics.median(times):.1f} s, worst {worst:.1f} s "
        f"(target <= {TARGET_S:g} s; the broker alone: ~{settings.visibility_timeout_s} s)"
    )


if __name__ == "__main__":
    main()
