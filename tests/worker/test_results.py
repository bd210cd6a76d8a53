"""Quality metrics stored with a committed turn (worker/results.py)."""

from __future__ import annotations

import io
import os
import random
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as samples

from producer import sessions as producer_sessions
from shared.blobcache import BlobCache
from shared.errors import PermanentError, RateLimited, ServerError, StorageUnavailable
from shared.keys import turn_key
from shared.status import build_status
from shared.turn_records import BlobRef, ImageInfo, TurnRequest, TurnResult
from shared.waves import WaveLine
from tests.worker.conftest import World, answer, jpeg, make_world
from worker import measuring
from worker.effects import TurnEffects
from worker.quality import Pixels, decode_reduced, image_features, turn_metrics
from worker.results import (
    DECODED_SUFFIX,
    FEATURES_SUFFIX,
    decoded,
    features_of,
    quality_metrics,
)
from worker.turn import Outcome, TurnRunner
from worker.wave_commit import line_back


def test_turn_two_stores_the_quality_table_numbers_against_turn_one(tmp_path: Path) -> None:
    world = make_world(tmp_path, [answer(jpeg((120, 140, 120))), answer(jpeg((230, 30, 30)))])
    sid = world.session(["a room", "Paint it red. Keep all else exactly."])
    runner = TurnRunner(world.services, owner="w1", rng=random.Random(1))

    assert runner.run(sid, 1, attempt=1) is Outcome.COMMITTED
    assert runner.run(sid, 2, attempt=1) is Outcome.COMMITTED

    first, second = world.repo.result(sid, 1), world.repo.result(sid, 2)
    # Turn 2 was requested when turn 1 committed: turn 1 left its numbers to turn 2, which
    # measured them while it waited and carries them; turn 2, the last, measured itself.
    assert first is not None and first.metrics_deferred and first.metrics == {}
    assert second is not None and not second.metrics_deferred
    assert second.previous_metrics is not None
    assert set(second.previous_metrics) == {"sharpness", "noise"}
    assert world.repo.snapshot(sid).metrics_of(1) == second.previous_metrics
    assert second.metrics["changed_fraction"] == 1.0  # every pixel went from sage to red
    assert second.metrics["aligned"] == 0.0  # two flat frames have no features to match
    assert second.metrics["keeps_rest"] == 1.0
    row = build_status(world.repo.snapshot(sid), {}).turns[1].quality
    assert row is not None
    assert (row.preservation.verdict, row.drift.verdict) == ("weak", "weak")


def test_a_turn_with_a_mask_measures_inside_and_outside_it(tmp_path: Path) -> None:
    before = jpeg((120, 140, 120), (320, 180))
    after = Image.new("RGB", (320, 180), (120, 140, 120))
    after.paste((230, 30, 30), (0, 0, 160, 180))  # the left half, as the mask allows
    world = make_world(tmp_path, [answer(before), answer(encoded(after))])
    sid = world.session(["a room", "Paint the left wall red. Keep all else exactly."])
    mask = Image.new("L", (32, 18), 0)
    mask.paste(255, (0, 0, 16, 18))
    ref = BlobRef(
        sha256=world.services.blobs.put(encoded(mask)), size_bytes=1, mime_type="image/png"
    )
    request = world.repo.request(sid, 2)
    assert request is not None
    world.repo.replace_request(sid, request.model_copy(update={"mask": ref}))
    runner = TurnRunner(world.services, owner="w1", rng=random.Random(1))

    runner.run(sid, 1, attempt=1)
    runner.run(sid, 2, attempt=1)

    metrics = world.repo.result(sid, 2).metrics  # type: ignore[union-attr]
    assert metrics["region_from_mask"] == 1.0
    assert metrics["region_fraction"] == pytest.approx(0.5, abs=0.03)
    assert metrics["changed_inside"] > 0.9
    assert metrics["changed_outside"] == 0.0


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
    request = TurnRequest(index=2, prompt="keep all else", created_at=previous.committed_at)

    current = world.services.blobs.put(jpeg())
    assert quality_metrics(world.services.blobs, previous, request, current) == {}


def encoded(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_a_blobs_quality_pixels_are_decoded_once_per_machine(tmp_path: Path) -> None:
    world = make_world(tmp_path, [])
    data = jpeg((200, 100, 50), size=(640, 360))
    sha = world.services.blobs.put(data)

    first = decoded(world.services.blobs, sha, data)
    again = decoded(world.services.blobs, sha)  # from the .npy file, not from the image

    assert (world.services.blobs.directory / f"{sha}{DECODED_SUFFIX}").is_file()
    assert np.array_equal(first, again) and np.array_equal(first, decode_reduced(data))


def _one_cached_blob(tmp_path: Path) -> tuple[BlobCache, str, Pixels]:
    """A fresh world's blob cache holding one 640x360 JPEG; its sha and its (now cached) pixels."""
    blobs = make_world(tmp_path, []).services.blobs
    data = jpeg((200, 100, 50), size=(640, 360))
    sha = blobs.put(data)
    return blobs, sha, decoded(blobs, sha, data)


def test_reading_cached_pixels_or_features_marks_them_used_for_eviction(tmp_path: Path) -> None:
    blobs, sha, pixels = _one_cached_blob(tmp_path)
    features_of(blobs, sha, pixels)
    files = [blobs.directory / f"{sha}{suffix}" for suffix in (DECODED_SUFFIX, FEATURES_SUFFIX)]
    for path in files:
        os.utime(path, (1_000_000, 1_000_000))  # written long ago

    features_of(blobs, sha, decoded(blobs, sha))  # both read from the cache

    assert all(path.stat().st_mtime > 1_000_000 for path in files)


def test_a_blobs_features_are_found_once_per_machine_and_match_fresh_ones(tmp_path: Path) -> None:
    world = make_world(tmp_path, [])
    blobs = world.services.blobs
    photo = Image.fromarray(np.asarray(samples.astronaut(), dtype=np.uint8))
    data = [_jpeg_of(photo), _jpeg_of(photo.crop((24, 16, 512, 512)).resize((512, 512)))]
    shas = [blobs.put(d) for d in data]
    prev, cur = (decoded(blobs, sha, d) for sha, d in zip(shas, data, strict=True))

    known = (features_of(blobs, shas[0], prev), features_of(blobs, shas[1], cur))
    # From `<sha>.orb-….npy`: the pixels passed are not looked at again.
    again = features_of(blobs, shas[0], np.zeros_like(prev))

    assert (blobs.directory / f"{shas[0]}{FEATURES_SUFFIX}").is_file()
    assert len(known[0].points) > 100
    assert np.array_equal(again.points, known[0].points)
    assert np.array_equal(again.descriptors, known[0].descriptors)
    prompt = "Zoom in a little. Keep all else exactly."
    with_known = turn_metrics(prompt, prev, cur, None, known)
    assert with_known == turn_metrics(prompt, prev, cur) and with_known["aligned"] == 1.0


def _jpeg_of(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92)
    return out.getvalue()


def _three_turns(tmp_path: Path, third: object) -> tuple[World, str, TurnRunner]:
    outcomes = [answer(jpeg((120, 140, 120))), answer(jpeg((230, 30, 30))), third]
    world = make_world(tmp_path, outcomes)  # type: ignore[arg-type]
    sid = world.session(["a room", "Paint it red. Keep all else exactly.", "Add a lamp."])
    runner = TurnRunner(world.services, owner="w1", rng=random.Random(1))
    assert runner.run(sid, 1, attempt=1) is Outcome.COMMITTED
    assert runner.run(sid, 2, attempt=1) is Outcome.COMMITTED
    return world, sid, runner


def test_a_deferred_transition_gets_the_numbers_it_would_have_got_inline(tmp_path: Path) -> None:
    world, sid, runner = _three_turns(tmp_path, answer(jpeg((230, 30, 30))))
    snap = world.repo.snapshot(sid)
    second = snap.results[2]
    assert second.metrics_deferred and second.metrics == {}
    inline = quality_metrics(
        world.services.blobs, snap.results[1], snap.requests[2], second.image.blob
    )

    assert runner.run(sid, 3, attempt=1) is Outcome.COMMITTED

    snap = world.repo.snapshot(sid)
    assert snap.results[3].previous_metrics == inline == snap.metrics_of(2)
    assert inline["changed_fraction"] == 1.0
    rows = build_status(snap, {}).turns
    assert rows[1].metrics == inline and rows[1].quality is not None  # status shows turn 2's row
    assert rows[2].quality is not None  # the last turn measured itself


def test_a_next_turn_that_fails_keeps_the_deferred_numbers_in_quality_json(tmp_path: Path) -> None:
    world, sid, runner = _three_turns(tmp_path, PermanentError("refused for this test"))

    assert runner.run(sid, 3, attempt=1) is Outcome.FAILED

    snap = world.repo.snapshot(sid)
    assert snap.results[2].metrics_deferred
    assert world.store.exists(turn_key(sid, 2, "quality.json"))
    assert snap.metrics_of(2) is not None and snap.metrics_of(2)["changed_fraction"] == 1.0
    assert build_status(snap, {}).turns[1].quality is not None


@pytest.mark.parametrize("error", [ServerError("503 for this test"), PermanentError("400")])
def test_the_numbers_are_kept_before_the_turn_is_handed_back_or_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    # A redelivery that listed the session before quality.json existed would measure turn 2
    # again and count its verdicts a second time (second reader's race, flex fallback).
    world, sid, runner = _three_turns(tmp_path, error)
    seen: list[bool] = []
    for name in ("requeue", "fail"):
        original = getattr(TurnEffects, name)

        def spy(self: TurnEffects, *args: object, _original: object = original) -> object:
            seen.append(world.store.exists(turn_key(sid, 2, "quality.json")))
            return _original(self, *args)  # type: ignore[operator]

        monkeypatch.setattr(TurnEffects, name, spy)

    assert runner.run(sid, 3, attempt=1) in (Outcome.RETRY, Outcome.FAILED)

    assert seen == [True]


def test_an_empty_or_foreign_cached_file_is_recomputed_not_fatal(tmp_path: Path) -> None:
    blobs, sha, fresh = _one_cached_blob(tmp_path)
    for suffix in (DECODED_SUFFIX, FEATURES_SUFFIX):
        (blobs.directory / f"{sha}{suffix}").write_bytes(b"")  # a crash after the rename

    assert np.array_equal(decoded(blobs, sha), fresh)
    assert features_of(blobs, sha, fresh).points.shape == image_features(fresh).points.shape
    for suffix in (DECODED_SUFFIX, FEATURES_SUFFIX):  # recomputed and written again
        assert (blobs.directory / f"{sha}{suffix}").stat().st_size > 0
    np.save(blobs.directory / f"{sha}{FEATURES_SUFFIX}", np.zeros((2, 2)))  # not features
    assert features_of(blobs, sha, fresh).descriptors.shape[1] == 32
    assert not list(blobs.directory.glob(".tmp-*"))


def test_a_cancelled_next_turn_keeps_the_deferred_numbers_too(tmp_path: Path) -> None:
    world, sid, runner = _three_turns(tmp_path, answer(jpeg((230, 30, 30))))
    world.repo.cancel(sid)

    assert runner.run(sid, 3, attempt=1) is Outcome.CANCELLED

    assert world.repo.snapshot(sid).metrics_of(2) is not None
    assert world.gemini.calls == 2  # turn 3 never called the API


def _deferred_turn_one(tmp_path: Path, second: object) -> tuple[World, str]:
    world = make_world(tmp_path, [answer(jpeg((120, 140, 120))), second])  # type: ignore[list-item]
    sid = world.session(["a room", "Paint it red. Keep all else exactly."])
    runner = TurnRunner(world.services, owner="w1", rng=random.Random(1))
    assert runner.run(sid, 1, attempt=1) is Outcome.COMMITTED
    first = world.repo.result(sid, 1)
    assert first is not None and first.metrics_deferred
    return world, sid


def test_a_wave_line_that_fails_keeps_the_deferred_numbers(tmp_path: Path) -> None:
    world, sid = _deferred_turn_one(tmp_path, answer(jpeg()))
    line = WaveLine(key=f"{sid}:2:3", session_id=sid, index=2, attempt=3)

    assert line_back(world.services, line, PermanentError("400 for this test")) == "failed"

    assert world.store.exists(turn_key(sid, 1, "quality.json"))
    assert world.repo.snapshot(sid).metrics_of(1) is not None


def test_a_parked_next_turn_keeps_the_numbers_before_anyone_cancels(tmp_path: Path) -> None:
    world, sid = _deferred_turn_one(tmp_path, RateLimited("daily quota", daily=True))
    runner = TurnRunner(world.services, owner="w1", rng=random.Random(1))

    assert runner.run(sid, 2, attempt=1) is Outcome.PARKED

    found = world.repo.snapshot(sid).metrics_of(1)
    assert found is not None and set(found) == {"sharpness", "noise"}


def test_a_throttled_next_turn_measures_once_and_keeps_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world, sid = _deferred_turn_one(tmp_path, answer(jpeg()))
    runner = TurnRunner(world.services, owner="w1", rng=random.Random(1))
    measured: list[int] = []
    real = measuring.measure

    def counting(blobs: object, snap: object, index: int) -> dict[str, float]:
        measured.append(index)
        return real(blobs, snap, index)  # type: ignore[arg-type]

    monkeypatch.setattr(measuring, "measure", counting)
    monkeypatch.setattr(world.services.gate, "admit", lambda owner, ttl: 5.0)

    for attempt in range(1, 4):
        assert runner.run(sid, 2, attempt=attempt) is Outcome.THROTTLED
    meanwhile_done = world.repo.snapshot(sid)

    assert measured == [1]  # the first attempt measured and kept; the others read quality.json
    assert meanwhile_done.metrics_of(1) is not None


def test_a_fork_at_a_deferred_turn_brings_its_numbers(tmp_path: Path) -> None:
    world, sid, runner = _three_turns(tmp_path, answer(jpeg((230, 30, 30))))
    assert runner.run(sid, 3, attempt=1) is Outcome.COMMITTED
    assert world.repo.snapshot(sid).results[2].metrics_deferred  # turn 3 carries them

    new = producer_sessions.fork(world.services, sid, 2)  # type: ignore[arg-type]

    forked = world.repo.snapshot(new).metrics_of(2)
    assert forked is not None and forked["changed_fraction"] == 1.0


def test_keeping_the_numbers_never_fails_the_caller_when_the_store_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # wave_build calls keep directly: a store error there must not escape into the wave.
    world, sid, _ = _three_turns(tmp_path, answer(jpeg()))
    snap = world.repo.snapshot(sid, through=3)

    def refuse(*_: object) -> bool:
        raise StorageUnavailable("S3 down for this test")

    monkeypatch.setattr(world.repo, "put_quality", refuse)
    measuring.keep(world.services, snap, 2)  # logs, returns

    assert not world.store.exists(turn_key(sid, 2, "quality.json"))
