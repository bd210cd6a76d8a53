"""Flex-tier turns: the flex lane asks for serviceTier flex, bills half, falls back to standard."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest

from shared.config import load_settings
from shared.errors import ServerError, Timeout
from shared.models import Tier
from shared.session_records import SessionRecord
from shared.turn_records import TurnRequest
from tests.lanes import LaneEnqueuer
from tests.worker.conftest import NOW, World, answer, jpeg, make_world
from worker.timeouts import check_timeouts
from worker.turn import Outcome, TurnRunner


def flex_world(tmp_path: Path, outcomes: list[object], **overrides: object) -> World:
    world = make_world(tmp_path, outcomes, **overrides)  # type: ignore[arg-type]
    world.services = dataclasses.replace(world.services, enqueuer=LaneEnqueuer())
    record = SessionRecord(
        session_id="f1",
        model="gemini-3.1-flash-image",
        image_size="2K",
        tier=Tier.FLEX,
        created_at=NOW,
    )
    assert world.repo.create_session(record)
    for n, prompt in enumerate(["a room", "sage walls"], start=1):
        world.repo.add_request("f1", TurnRequest(index=n, prompt=prompt, created_at=NOW))
    return world


def lane_calls(world: World) -> list[tuple[str, int, int, str]]:
    enqueuer = world.services.enqueuer
    assert isinstance(enqueuer, LaneEnqueuer)
    return enqueuer.calls


def flex_runner(world: World, lane: str = "flex") -> TurnRunner:
    return TurnRunner(world.services, owner="w1", rng=random.Random(1), lane=lane)


def test_a_flex_turn_asks_for_the_flex_tier_bills_half_and_chains_on_the_flex_lane(
    tmp_path: Path,
) -> None:
    world = flex_world(tmp_path, [answer(jpeg()), answer(jpeg())])

    assert flex_runner(world).run("f1", 1, attempt=1) is Outcome.COMMITTED

    assert world.gemini.body_json()["serviceTier"] == "flex"
    flex = world.repo.result("f1", 1)
    assert flex is not None and flex.tier is Tier.FLEX
    assert lane_calls(world) == [("f1", 2, 1, "flex")]
    standard_world = make_world(tmp_path / "std", [answer(jpeg())])
    sid = standard_world.session(["a room"])
    TurnRunner(standard_world.services, owner="w1").run(sid, 1, attempt=1)
    standard = standard_world.repo.result(sid, 1)
    assert standard is not None and standard.tier is Tier.STANDARD
    assert "serviceTier" not in standard_world.gemini.body_json()
    assert flex.cost_usd == pytest.approx(standard.cost_usd * 0.5, abs=1e-6)


def test_a_shed_flex_turn_retries_on_flex_until_the_shed_limit_then_falls_back(
    tmp_path: Path,
) -> None:
    shed = ServerError("overloaded", status=503)
    world = flex_world(tmp_path, [shed, shed], flex_max_sheds=2)

    assert flex_runner(world).run("f1", 1, attempt=1) is Outcome.RETRY
    assert flex_runner(world).run("f1", 1, attempt=2) is Outcome.FALLBACK

    assert lane_calls(world) == [("f1", 1, 2, "flex"), ("f1", 1, 3, "standard")]
    assert world.services.coord.live("f1")[1].reason == "flex_fallback"


def test_a_flex_call_past_its_deadline_falls_back_at_once(tmp_path: Path) -> None:
    world = flex_world(tmp_path, [Timeout("900 s deadline")])
    assert flex_runner(world).run("f1", 1, attempt=1) is Outcome.FALLBACK
    assert lane_calls(world) == [("f1", 1, 2, "standard")]


def test_a_fallen_back_turn_bills_standard_and_the_next_turn_goes_back_to_flex(
    tmp_path: Path,
) -> None:
    world = flex_world(tmp_path, [answer(jpeg())])

    assert flex_runner(world, lane="standard").run("f1", 1, attempt=3) is Outcome.COMMITTED

    assert "serviceTier" not in world.gemini.body_json()
    result = world.repo.result("f1", 1)
    assert result is not None and result.tier is Tier.STANDARD
    assert lane_calls(world) == [("f1", 2, 1, "flex")]


def test_a_flex_worker_refuses_a_visibility_timeout_shorter_than_its_deadline() -> None:
    settings = load_settings(lane="flex", flex_timeout_s=900, flex_visibility_timeout_s=600)
    with pytest.raises(ValueError, match="EDITQUEUE_FLEX_VISIBILITY_TIMEOUT_S=600"):
        check_timeouts(settings)
    check_timeouts(load_settings(lane="flex", flex_timeout_s=900))  # the default fits
    assert load_settings(lane="flex").call_timeout_s == 900
