"""Generation is cheap enough for benchmarks of hundreds of 4K turns on two cores."""

from __future__ import annotations

import io
import statistics
import time

import pytest
from PIL import Image, ImageFilter

from emulator.imaging import Target, derive_image
from emulator.room import synthetic_room
from shared.catalog import pixel_size, profile_for
from tests.emulator.helpers import NB2

BUDGET_S = {"2K": 0.5, "4K": 1.0}


def _photo_like(size: str) -> bytes:
    """A high-quality JPEG with photo-like noise, so decode and encode do real work."""
    width, height = pixel_size("16:9", size)
    noise = Image.effect_noise((width, height), 40).convert("RGB")
    image = Image.blend(synthetic_room(width, height), noise.filter(ImageFilter.BoxBlur(1)), 0.25)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


@pytest.mark.parametrize("size", ["2K", "4K"])
def test_a_generation_from_a_full_size_photo_is_well_under_budget(size: str) -> None:
    source = _photo_like(size)
    target = Target(profile_for(NB2), "16:9", size)
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        result = derive_image(source, "paint the walls #8FAF8A", target)
        timings.append(time.perf_counter() - started)
        source = result.data
    assert (result.width, result.height) == pixel_size("16:9", size)
    assert statistics.median(timings) < BUDGET_S[size]
