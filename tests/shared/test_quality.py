"""Quality signals of a transition: SSIM, changed fraction and the framing-drift flag."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from skimage import data as samples

from shared.quality import (
    ANALYSIS_LONG_SIDE_PX,
    analysis_size,
    asks_to_keep_the_rest,
    decode_reduced,
    is_drift,
    transition_metrics,
    turn_metrics,
)

KEEP_ALL_ELSE = "Change wall color to warm sage green (#8FAF8A). Keep all else exactly."


def encode(image: Image.Image, fmt: str = "JPEG") -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return out.getvalue()


def texture(width: int = 800, height: int = 450, seed: int = 7) -> Image.Image:
    """A mid-grey textured scene (values 60..190), so a magenta repaint changes every pixel."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(60, 190, (height // 10, width // 10, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)


def photo() -> Image.Image:
    """A natural image (scikit-image's astronaut) in a 16:9 frame."""
    return Image.fromarray(samples.astronaut()).resize((1024, 576))


def reframed(image: Image.Image, zoom: float = 0.1) -> Image.Image:
    """The same scene with the camera moved closer: a change of framing."""
    dx, dy = int(image.width * zoom / 2), int(image.height * zoom / 2)
    box = (dx, dy, image.width - dx, image.height - dy)
    return image.crop(box).resize(image.size, Image.Resampling.BICUBIC)


def test_identical_images_have_ssim_one_and_nothing_changed() -> None:
    data = encode(photo())

    metrics = transition_metrics(data, data)

    assert metrics["ssim"] == pytest.approx(1.0, abs=1e-4)
    assert metrics["changed_fraction"] == 0.0


def test_a_recompressed_copy_is_still_nearly_identical() -> None:
    image = photo()

    metrics = transition_metrics(encode(image), encode(image, "PNG"))

    assert metrics["ssim"] > 0.98
    assert metrics["changed_fraction"] < 0.01


def test_a_painted_wall_lowers_ssim_and_the_changed_fraction_matches_its_area() -> None:
    before = texture()
    after = before.copy()
    wall_height = int(before.height * 0.4)
    after.paste((255, 0, 255), (0, 0, before.width, wall_height))

    metrics = transition_metrics(encode(before), encode(after))

    assert metrics["ssim"] < 0.9
    assert metrics["changed_fraction"] == pytest.approx(0.4, abs=0.03)


def test_a_different_framing_on_a_keep_all_else_prompt_is_flagged_as_drift() -> None:
    before = photo()

    metrics = turn_metrics(KEEP_ALL_ELSE, encode(before), encode(reframed(before)))

    assert metrics["ssim"] < 0.5
    assert metrics["drift"] == 1.0


def test_a_normal_edit_prompt_is_not_flagged_even_when_the_framing_changes() -> None:
    before = photo()

    metrics = turn_metrics(
        "Show the room from the doorway", encode(before), encode(reframed(before))
    )

    assert metrics["drift"] == 0.0


def test_a_lighting_change_on_a_preserve_prompt_is_not_drift() -> None:
    before = photo()
    warmer = before.point([min(255, int(v * g)) for g in (0.95, 0.8, 0.65) for v in range(256)])

    metrics = turn_metrics(
        "Warm evening light. Preserve all prior elements.", encode(before), encode(warmer)
    )

    assert metrics["changed_fraction"] > 0.1
    assert metrics["drift"] == 0.0


def test_a_changed_aspect_ratio_is_compared_at_the_new_frame_and_reads_as_drift() -> None:
    before = photo()
    square = before.crop((224, 0, 800, 576))  # the centre square: framing changed

    metrics = turn_metrics("Same scene, no further changes.", encode(before), encode(square))

    assert metrics["drift"] == 1.0


@pytest.mark.parametrize(
    ("prompt", "keeps"),
    [
        (KEEP_ALL_ELSE, True),
        ("Generate same scene at 4K resolution, no further changes.", True),
        ("Add a bookshelf. PRESERVE everything else.", True),
        ("Lighting warmer; leave the rest unchanged", True),
        ("keep everything else as it is", True),
        ("Add a tall walnut bookshelf on the left wall", False),
        ("Keep the sofa but make it blue", False),
    ],
)
def test_prompts_that_ask_to_keep_the_rest_are_recognised(prompt: str, keeps: bool) -> None:
    assert asks_to_keep_the_rest(prompt) is keeps


@pytest.mark.parametrize(
    ("metrics", "drift"),
    [
        ({"ssim": 0.49, "changed_fraction": 0.3}, True),
        ({"ssim": 0.9, "changed_fraction": 0.99}, True),
        ({"ssim": 0.9, "changed_fraction": 0.5}, False),
    ],
)
def test_drift_needs_low_ssim_or_nearly_everything_changed(
    metrics: dict[str, float], drift: bool
) -> None:
    assert is_drift(KEEP_ALL_ELSE, metrics) is drift


def test_large_jpegs_are_decoded_at_the_analysis_size() -> None:
    data = encode(texture(4096, 2304))

    image = decode_reduced(data)

    assert image.size == (ANALYSIS_LONG_SIDE_PX, ANALYSIS_LONG_SIDE_PX * 2304 // 4096)
    assert analysis_size(200, 100) == (200, 100)  # small images are not enlarged


def test_tiny_images_still_get_a_score() -> None:
    small = encode(Image.new("RGB", (5, 4), (10, 20, 30)))

    assert transition_metrics(small, small)["ssim"] == pytest.approx(1.0)
