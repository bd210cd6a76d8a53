"""The batcher against the in-process emulator's Batch API, with in-memory store and Redis twin."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator import EmulatorConfig, RunningEmulator, start_emulator
from shared.broker import dispatch
from shared.models import Tier
from shared.session_records import SessionRecord
from shared.turn_records import TurnRequest
from shared.waves import WaveRepository
from tests.worker.conftest import NOW, World, make_world
from worker.batcher import Batcher
from worker.gemini_batch import HttpBatchApi

MODEL = "gemini-3.1-flash-image"


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    with start_emulator(EmulatorConfig(seed=5, batch_turnaround_s=0.2)) as running:
        yield running


def batch_world(tmp_path: Path, emulator: RunningEmulator, **overrides: object) -> World:
    world = make_world(
        tmp_path, [], batch_gather_s=0.0, batch_poll_s=0.05, batch_poll_max_s=0.2, **overrides
    )
    api = HttpBatchApi(emulator.url, world.services.settings.api_key)
    world.services = dataclasses.replace(world.services, batch_api=api)
    return world


def add_sessions(world: World, count: int, prompts: list[str]) -> list[str]:
    sids = []
    for n in range(count):
        sid = f"b{n:02d}"
        record = SessionRecord(
            session_id=sid, model=MODEL, image_size="512", tier=Tier.BATCH, created_at=NOW
        )
        assert world.repo.create_session(record)
        for index, prompt in enumerate(prompts, start=1):
            request = TurnRequest(index=index, prompt=f"{prompt} {sid}", created_at=NOW)
            world.repo.add_request(sid, request)
        dispatch(world.services, sid, 1, lane="batch")
        sids.append(sid)
    return sids


def run_until_settled(batcher: Batcher, world: World, sids: list[str], turns: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        batcher.run_once(time.time())
        finished = all(
            world.repo.is_committed(sid, turns) or world.repo.failure(sid, n) is not None
            for sid in sids
            for n in range(1, turns + 1)
        )
        if finished and not WaveRepository(world.store).open_waves():
            return
        time.sleep(0.05)
    raise AssertionError("the waves did not settle in 30 s")


def test_batch_sessions_advance_one_turn_per_wave_with_no_generate_content_call(
    tmp_path: Path, emulator: RunningEmulator
) -> None:
    world = batch_world(tmp_path, emulator)
    sids = add_sessions(world, 4, ["an empty room", "sage walls", "evening light"])
    emulator.reset()
    batcher = Batcher(world.services, world.services.batch_api)  # type: ignore[arg-type]

    run_until_settled(batcher, world, sids, 3)

    waves = sorted(WaveRepository(world.store).all_waves(), key=lambda w: w.created_at)
    assert len(waves) == 3 and {w.input for w in waves} == {"inline"}
    assert [sorted(ln.index for ln in w.lines) for w in waves] == [[1] * 4, [2] * 4, [3] * 4]
    assert all(ln.outcome == "committed" for w in waves for ln in w.lines)
    for sid in sids:
        results = [world.repo.result(sid, n) for n in (1, 2, 3)]
        assert all(r is not None and r.tier is Tier.BATCH for r in results)
    assert emulator.stats()["total_calls"] == 0
    assert world.coord.batch_due() == {}


def test_a_wave_over_the_inline_limit_goes_as_a_jsonl_file(
    tmp_path: Path, emulator: RunningEmulator
) -> None:
    world = batch_world(tmp_path, emulator, batch_inline_max_bytes=0)
    sids = add_sessions(world, 2, ["an empty room"])
    batcher = Batcher(world.services, world.services.batch_api)  # type: ignore[arg-type]

    run_until_settled(batcher, world, sids, 1)

    (wave,) = WaveRepository(world.store).all_waves()
    assert wave.input == "file" and wave.file_name and wave.file_name.startswith("files/")
    assert all(world.repo.is_committed(sid, 1) for sid in sids)


def test_a_permanent_line_failure_fails_only_that_turn_and_a_transient_one_goes_again(
    tmp_path: Path, emulator: RunningEmulator
) -> None:
    world = batch_world(tmp_path, emulator)
    ok = add_sessions(world, 1, ["a room"])
    bad = SessionRecord(
        session_id="bad", model=MODEL, image_size="512", tier=Tier.BATCH, created_at=NOW
    )
    flaky = bad.model_copy(update={"session_id": "flaky"})
    for record, prompt in ((bad, "a room !fault=400"), (flaky, "a room !fault=503x1")):
        world.repo.create_session(record)
        world.repo.add_request(
            record.session_id, TurnRequest(index=1, prompt=prompt, created_at=NOW)
        )
        dispatch(world.services, record.session_id, 1, lane="batch")
    batcher = Batcher(world.services, world.services.batch_api)  # type: ignore[arg-type]

    run_until_settled(batcher, world, [*ok, "bad", "flaky"], 1)

    failure = world.repo.failure("bad", 1)
    assert failure is not None and failure.error.status == 400
    assert world.repo.is_committed(ok[0], 1)
    flaky_result = world.repo.result("flaky", 1)
    assert flaky_result is not None and flaky_result.attempt == 2  # went again in the next wave


def test_a_cancelled_sessions_due_turn_never_reaches_a_wave(
    tmp_path: Path, emulator: RunningEmulator
) -> None:
    world = batch_world(tmp_path, emulator)
    keep, drop = add_sessions(world, 2, ["a room"])
    world.repo.cancel(drop)
    batcher = Batcher(world.services, world.services.batch_api)  # type: ignore[arg-type]

    run_until_settled(batcher, world, [keep], 1)

    (wave,) = WaveRepository(world.store).all_waves()
    assert [ln.session_id for ln in wave.lines] == [keep]
    assert not world.repo.is_committed(drop, 1) and world.coord.batch_due() == {}


def test_a_session_cancelled_while_its_wave_runs_is_not_committed(
    tmp_path: Path, emulator: RunningEmulator
) -> None:
    world = batch_world(tmp_path, emulator)
    keep, drop = add_sessions(world, 2, ["a room", "sage walls"])
    batcher = Batcher(world.services, world.services.batch_api)  # type: ignore[arg-type]
    assert batcher.run_once(time.time()) == 1  # the wave is sent
    world.repo.cancel(drop)

    run_until_settled(batcher, world, [keep], 2)

    first = min(WaveRepository(world.store).all_waves(), key=lambda w: w.created_at)
    assert {ln.session_id: ln.outcome for ln in first.lines} == {
        keep: "committed",
        drop: "cancelled",
    }
    assert not world.repo.is_committed(drop, 1) and world.repo.is_committed(keep, 2)


def test_budgets_reserve_at_the_batch_price_before_a_wave_is_sent(
    tmp_path: Path, emulator: RunningEmulator
) -> None:
    world = batch_world(tmp_path, emulator)
    # NB2 at 512 px: $0.045 standard, $0.0225 at batch (plus a few prompt tokens)
    for sid, budget in (("fits", 0.03), ("over", 0.02)):
        record = SessionRecord(
            session_id=sid,
            model=MODEL,
            image_size="512",
            tier=Tier.BATCH,
            budget_usd=budget,
            created_at=NOW,
        )
        world.repo.create_session(record)
        world.repo.add_request(sid, TurnRequest(index=1, prompt="a room", created_at=NOW))
        dispatch(world.services, sid, 1, lane="batch")
    batcher = Batcher(world.services, world.services.batch_api)  # type: ignore[arg-type]

    run_until_settled(batcher, world, ["fits"], 1)

    (wave,) = WaveRepository(world.store).all_waves()
    assert [ln.session_id for ln in wave.lines] == ["fits"]
    result = world.repo.result("fits", 1)
    assert result is not None and 0.0225 <= result.cost_usd < 0.03
    parked = world.repo.parked("over", 1)
    assert parked is not None and parked.reason == "budget"
