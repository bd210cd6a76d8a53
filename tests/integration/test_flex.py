"""The flex lane end to end: a flex worker, a standard worker, an emulator that sheds flex."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.services import Stack, start_emulator, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def shedding_stack(stack: Stack, services_dir: Path) -> Iterator[Stack]:
    """Every flex call is shed with a 503 after 0.1 s; standard calls answer."""
    proc, url = start_emulator(services_dir, "--flex-shed-rate", "1", "--flex-latency-s", "0.1")
    stack.emulator_url = url
    stack.extra_env.update(
        EDITQUEUE_FLEX_TIMEOUT_S="5",
        EDITQUEUE_FLEX_VISIBILITY_TIMEOUT_S="30",
        EDITQUEUE_FLEX_MAX_SHEDS="2",
    )
    yield stack
    proc.kill()


def test_shed_flex_turns_fall_back_to_standard_and_complete_billed_at_standard(
    shedding_stack: Stack, tmp_path: Path
) -> None:
    stack = shedding_stack
    stack.start_worker("--lane", "flex")
    stack.start_worker()
    spec = tmp_path / "flex.jsonl"
    turns = '"turns": [{"prompt": "an empty room"}, {"prompt": "sage walls"}]'
    spec.write_text("".join(f'{{"image_size": "1K", {turns}}}\n' for _ in range(2)))

    out = stack.cli("submit", str(spec), "--tier", "flex")
    assert out.returncode == 0, out.stderr
    sids = out.stdout.split()

    def statuses() -> list[dict[str, object]]:
        return [json.loads(stack.cli("status", sid, "--json").stdout) for sid in sids]

    wait_until(lambda: all(s["state"] == "completed" for s in statuses()), 90, "flex sessions")
    docs = statuses()
    assert {d["tier"] for d in docs} == {"flex"}
    turns_done = [t for d in docs for t in d["turns"]]  # type: ignore[attr-defined]
    assert len(turns_done) == 4 and {t["tier"] for t in turns_done} == {"standard"}
    calls = requests.get(f"{stack.emulator_url}/emulator/stats", timeout=5).json()["calls"]
    shed = [c for c in calls if c["outcome"] == "flex_shed"]
    served = [c for c in calls if c["outcome"] == "ok"]
    assert len(shed) == 4 * 2  # each turn was shed flex_max_sheds times on the flex lane
    assert len(served) == 4 and {c["tier"] for c in served} == {"standard"}
