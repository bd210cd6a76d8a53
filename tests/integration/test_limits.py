"""Fleet limits end to end: one rate limit and one in-flight cap for every worker, batch budgets.

Real redis-server, moto's S3 server, the emulator over HTTP and `editqueue worker` processes. The
emulator's call log (start and end of every call) is the API's own view of what the fleet did.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from tests.integration.services import Proc, Stack, start_emulator, wait_until

pytestmark = pytest.mark.integration

RATE_LIMIT = 10
RATE_WINDOW_S = 5.0
# The fleet may leave a little of each window unused: a refused turn comes back after the window
# frees a slot plus up to a second of jitter, then loads its history before calling.
RATE_USED_PER_WINDOW = 8


@pytest.fixture
def own_emulator(stack: Stack, services_dir: Path) -> Iterator[Callable[[float], str]]:
    """Starts a private emulator (its call log holds only this test's calls) for the stack."""
    procs: list[Proc] = []

    def start(latency_s: float) -> str:
        proc, url = start_emulator(services_dir, "--latency-s", str(latency_s), "--seed", "11")
        procs.append(proc)
        stack.extra_env["EDITQUEUE_API_BASE_URL"] = url
        return url

    yield start
    for proc in procs:
        proc.kill()


def write_batch(workdir: Path, sessions: int, turns: int, name: str = "batch.jsonl") -> Path:
    """`sessions` small (512) sessions of `turns` turns each, as a JSONL batch spec."""
    lines = []
    for s in range(sessions):
        steps = [{"prompt": f"room {s}: a calm studio"}]
        steps += [{"prompt": f"room {s}: edit {t}. Keep all else."} for t in range(2, turns + 1)]
        lines.append(json.dumps({"aspect_ratio": "1:1", "image_size": "512", "turns": steps}))
    path = workdir / name
    path.write_text("\n".join(lines) + "\n")
    return path


def submit(stack: Stack, spec: Path, *args: str) -> list[str]:
    out = stack.cli("submit", str(spec), *args)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def statuses(stack: Stack) -> list[dict[str, Any]]:
    """Every session's status document: the listing's ids, then `status SID... --json`."""
    out = stack.cli("status", "--json")
    assert out.returncode == 0, out.stderr
    sids = [row["session_id"] for row in json.loads(out.stdout)]
    out = stack.cli("status", *sids, "--json")
    assert out.returncode in (0, 1), out.stderr
    docs: list[dict[str, Any]] = json.loads(out.stdout)
    return docs if len(sids) > 1 else [docs]  # type: ignore[list-item]


def wait_all(stack: Stack, count: int, timeout_s: float) -> list[dict[str, Any]]:
    """Poll until `count` sessions ended (completed or failed); the last status documents."""
    found: list[dict[str, Any]] = []

    def done() -> bool:
        found[:] = statuses(stack)
        ended = [d for d in found if d["state"] in ("completed", "failed")]
        return len(ended) == count

    wait_until(done, timeout_s, f"{count} sessions ended")
    return found


def calls(emulator_url: str) -> list[dict[str, Any]]:
    stats = requests.get(f"{emulator_url}/emulator/stats", timeout=10).json()
    return list(stats["calls"])


def max_in_window(starts: list[float], window_s: float) -> int:
    """Most call starts in any half-open window [t, t + window_s) (a maximum begins at a start)."""
    ordered = sorted(starts)
    best, j = 0, 0
    for i, start in enumerate(ordered):
        j = max(j, i)
        while j < len(ordered) and ordered[j] < start + window_s:
            j += 1
        best = max(best, j - i)
    return best


def full_window_counts(starts: list[float], window_s: float) -> list[int]:
    """Call starts in consecutive windows from the first start, up to the last full one."""
    first, last = min(starts), max(starts)
    counts = []
    begin = first
    while begin + window_s <= last:
        counts.append(sum(begin <= s < begin + window_s for s in starts))
        begin += window_s
    return counts


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """Most intervals open at one instant (an end at t frees its slot before a start at t)."""
    events = sorted([(end, -1) for _, end in intervals] + [(start, 1) for start, _ in intervals])
    best = current = 0
    for _, step in events:
        current += step
        best = max(best, current)
    return best


def test_window_arithmetic_counts_what_it_should() -> None:
    starts = [0.0, 1.0, 4.9, 5.0, 5.1, 9.99]
    assert max_in_window(starts, 5.0) == 4  # 1.0, 4.9, 5.0, 5.1
    assert full_window_counts(starts, 5.0) == [3]  # [0, 5); [5, 10) is not full before 9.99
    assert max_overlap([(0, 2), (1, 3), (2, 4), (2.5, 5)]) == 3
    assert max_overlap([(0, 1), (1, 2)]) == 1


def test_three_workers_share_one_rate_limit_and_use_it(
    stack: Stack, own_emulator: Callable[[float], str]
) -> None:
    emulator = own_emulator(0.2)
    stack.extra_env["EDITQUEUE_RATE_LIMIT"] = f"{RATE_LIMIT} per {RATE_WINDOW_S:g} seconds"
    sessions, turns = 14, 3
    for _ in range(3):
        stack.start_worker()
    submit(stack, write_batch(stack.workdir, sessions, turns))

    docs = wait_all(stack, sessions, timeout_s=60)

    assert {d["state"] for d in docs} == {"completed"}
    log = [c for c in calls(emulator) if c["outcome"] != "in_flight"]
    starts = [c["start"] for c in log]
    assert len(starts) == sessions * turns  # nothing refused by the API, nothing duplicated
    assert max_in_window(starts, RATE_WINDOW_S) <= RATE_LIMIT
    counts = full_window_counts(starts, RATE_WINDOW_S)
    assert len(counts) >= 3, counts
    used = [c for c in counts if c >= RATE_USED_PER_WINDOW]
    assert len(used) >= len(counts) - 1, f"quota idle: starts per full window {counts}"


def test_in_flight_cap_holds_across_workers(
    stack: Stack, own_emulator: Callable[[float], str]
) -> None:
    emulator = own_emulator(1.0)
    stack.extra_env["EDITQUEUE_MAX_INFLIGHT"] = "2"
    sessions, turns = 6, 2
    for _ in range(3):
        stack.start_worker("--concurrency", "4")
    submit(stack, write_batch(stack.workdir, sessions, turns))

    docs = wait_all(stack, sessions, timeout_s=60)

    assert {d["state"] for d in docs} == {"completed"}
    log = calls(emulator)
    assert len(log) == sessions * turns
    intervals = [(c["start"], c["end"]) for c in log]
    assert max_overlap(intervals) == 2  # never more than the cap, and the cap is used


def batch_spend(stack: Stack, batch_id: str) -> dict[str, Any]:
    out = stack.cli("status", "--batch", batch_id, "--json")
    assert out.returncode in (0, 1), out.stderr
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def ledger_spent(stack: Stack, batch_id: str) -> float:
    value = redis.Redis(port=stack.redis_port).hget(f"eq:budget:batch:{batch_id}", "spent")
    assert value is not None, "the batch has no ledger entry"
    return float(value)


def held_back(docs: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The first unfinished turn of every session, once each waits (None while any runs)."""
    firsts = []
    for doc in docs:
        turns = [t for t in doc["turns"] if t["state"] != "succeeded"]
        if any(t["state"] in ("queued", "running") for t in turns):
            return None
        firsts += turns[:1]
    return firsts


def test_batch_budget_caps_spend_and_resumes_when_raised(
    stack: Stack, own_emulator: Callable[[float], str]
) -> None:
    own_emulator(0.2)
    sessions, turns = 6, 2
    budget = 0.25  # ~5.5 turns of a 12-turn batch (~$0.54): about half
    for _ in range(3):
        stack.start_worker()
    batch = f"budget-{stack.prefix}"
    submit(
        stack,
        write_batch(stack.workdir, sessions, turns),
        "--batch-id",
        batch,
        "--budget-usd",
        str(budget),
    )

    firsts: list[dict[str, Any]] = []

    def settled() -> bool:
        found = held_back(statuses(stack))
        firsts[:] = found or []
        return found is not None and all(t["state"] == "waiting" for t in found) and bool(found)

    wait_until(settled, 60, "the batch to stop at its budget")

    docs = statuses(stack)
    costs = [t["cost_usd"] for d in docs for t in d["turns"] if t["state"] == "succeeded"]
    spent = sum(costs)
    assert spent <= budget
    assert spent >= budget - max(costs), f"budget under-used: ${spent:.4f} of ${budget}"
    assert ledger_spent(stack, batch) == pytest.approx(spent, abs=1e-6)
    assert all(t["waiting_reason"] == "budget" for t in firsts), firsts
    assert batch_spend(stack, batch)["waiting"].get("budget") == len(firsts)

    out = stack.cli("budget", batch, "--usd", "1.0")
    assert out.returncode == 0, out.stderr
    docs = wait_all(stack, sessions, timeout_s=60)

    assert {d["state"] for d in docs} == {"completed"}
    total = sum(t["cost_usd"] for d in docs for t in d["turns"])
    assert budget < total <= 1.0
    assert ledger_spent(stack, batch) == pytest.approx(total, abs=1e-6)
