"""Quality metrics stored with a committed turn (worker/results.py)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

from shared.models import ImageInfo, TurnResult
from tests.worker.conftest import answer, jpeg, make_world
from worker.results import quality_metrics
from worker.turn import Outcome, TurnRunner


def test_turn_two_stores_ssim_changed_fraction_and_drift_against_turn_one(tmp_path: Path) -> None:
    world = make_world(tmp_path, [answer(jpeg((120, 140, 120))), answer(jpeg((230, 30, 30)))])
    sid = world.session(["a room", "Paint it red. Keep all else exactly."])
    runner = TurnRunner(world.services, owner="w1", rng=random.Random(1))

    assert runner.run(sid, 1, attempt=1) is Outcome.COMMITTED
    assert runner.run(sid, 2, attempt=1) is Outcome.COMMITTED

    first, second = world.repo.result(sid, 1), world.repo.result(sid, 2)
    assert first is not None and first.metrics == {}
    assert second is not None
    assert set(second.metrics) == {"ssim", "changed_fraction", "drift"}
    assert second.metrics["changed_fraction"] == 1.0  # every pixel went from sage to red
    assert second.metrics["drift"] == 1.0


def test_an_unreadable_previous_image_gives_no_metrics_instead_of_failing(tmp_path: Path) -> None:
    world = make_world(tmp_path, [])
    blob = world.services.blobs.put(b"not an image at all")
    previous = TurnResult(
        index=1,
        parts=[],
        image=ImageInfo(blob=blob, mime_type="image/jpeg", width=64, height=36, bytes=19),
        latency_s=1.0,
        attempt=1,
        cost_usd=0.1,
        committed_at=datetime(2026, 11, 27, tzinfo=UTC),
    )

    assert quality_metrics(world.services.blobs, previous, "keep all else", jpeg()) == {}
