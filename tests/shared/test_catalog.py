"""The model catalog: profiles per model id, supported values, pixel sizes and byte estimates."""

from __future__ import annotations

import pytest

from shared.catalog import (
    DEFAULT_MODEL,
    FLASH_25,
    LITE,
    NB2,
    PIXELS_1K,
    PRO,
    ModelProfile,
    estimated_image_bytes,
    model_tiers,
    pixel_size,
    profile_for,
)


@pytest.mark.parametrize(
    ("model_id", "profile"),
    [
        ("gemini-3.1-flash-image", NB2),
        ("gemini-3.1-flash-image-preview", NB2),
        ("models/gemini-3.1-flash-image-preview", NB2),
        ("gemini-3-pro-image-preview", PRO),
        ("gemini-3-pro-image", PRO),
        ("models/gemini-3-pro-image", PRO),
        ("gemini-3.1-flash-lite-image-preview", LITE),
        ("gemini-2.5-flash-image", FLASH_25),
        ("gemini-2.5-flash-image-preview", FLASH_25),
    ],
)
def test_profile_for_maps_known_and_preview_ids_to_their_ga_profile(
    model_id: str, profile: ModelProfile
) -> None:
    assert profile_for(model_id) is profile


@pytest.mark.parametrize("model_id", ["gemini-4-flash-image", "my-gateway/nano-banana", "x"])
def test_profile_for_an_unknown_id_is_nb2_under_that_id(model_id: str) -> None:
    profile = profile_for(model_id)
    assert profile.model_id == model_id
    assert profile.image_sizes == NB2.image_sizes
    assert profile.aspect_ratios == NB2.aspect_ratios
    assert profile.context_tokens == NB2.context_tokens
    assert profile.image_tokens == NB2.image_tokens
    assert profile.price_usd == NB2.price_usd


def test_the_default_model_has_its_own_profile() -> None:
    assert DEFAULT_MODEL == "gemini-3.1-flash-image"
    assert profile_for(DEFAULT_MODEL) is NB2


@pytest.mark.parametrize(
    ("profile", "aspect_ratio", "image_size", "ok"),
    [
        (NB2, "16:9", "512", True),
        (NB2, "8:1", "4K", True),
        (NB2, None, None, True),
        (NB2, "16:9", "8K", False),
        (NB2, "7:3", "1K", False),
        (PRO, "16:9", "4K", True),
        (PRO, "16:9", "512", False),
        (PRO, "1:4", "1K", False),
        (LITE, "1:8", "1K", True),
        (LITE, "1:1", "2K", False),
        (FLASH_25, "21:9", "1K", True),
        (FLASH_25, "21:9", None, True),
        (FLASH_25, "1:1", "2K", False),
        (FLASH_25, "4:1", None, False),
    ],
)
def test_supports_checks_aspect_ratio_and_size_per_model(
    profile: ModelProfile, aspect_ratio: str | None, image_size: str | None, ok: bool
) -> None:
    assert profile.supports(aspect_ratio, image_size) is ok


@pytest.mark.parametrize(
    ("aspect_ratio", "image_size", "pixels"),
    [
        ("16:9", "512", (688, 384)),
        ("16:9", "1K", (1376, 768)),
        ("16:9", "2K", (2752, 1536)),
        ("16:9", "4K", (5504, 3072)),
        ("1:1", "1K", (1024, 1024)),
        ("1:1", "4K", (4096, 4096)),
        ("9:16", "2K", (1536, 2752)),
        ("21:9", "512", (792, 336)),
        ("2:3", "4K", (3392, 5056)),
        (None, None, (1024, 1024)),
        ("16:9", None, (1376, 768)),
        (None, "2K", (2048, 2048)),
        ("7:3", "1K", (1024, 1024)),  # unknown ratio falls back to square
        ("16:9", "8K", (1376, 768)),  # unknown size falls back to 1K
    ],
)
def test_pixel_size_per_aspect_ratio_and_size(
    aspect_ratio: str | None, image_size: str | None, pixels: tuple[int, int]
) -> None:
    assert pixel_size(aspect_ratio, image_size) == pixels


def test_every_aspect_ratio_nb2_accepts_has_a_pixel_size() -> None:
    assert set(NB2.aspect_ratios) == set(PIXELS_1K)


def test_every_1k_pixel_size_is_a_multiple_of_16_and_close_to_its_ratio() -> None:
    for ratio, (width, height) in PIXELS_1K.items():
        w, h = (int(x) for x in ratio.split(":"))
        assert width % 16 == 0 and height % 16 == 0, ratio
        assert abs(width / height - w / h) / (w / h) < 0.03, ratio


@pytest.mark.parametrize(
    ("aspect_ratio", "image_size", "expected"),
    [
        ("16:9", "2K", 3_508_469),  # 2752 x 1536 x 0.83: the ~3.5 MB of a 2K JPEG
        ("1:1", "1K", 870_318),
        ("16:9", "4K", 14_033_879),
    ],
)
def test_estimated_image_bytes_scales_with_pixels(
    aspect_ratio: str, image_size: str, expected: int
) -> None:
    assert estimated_image_bytes(aspect_ratio, image_size) == expected


@pytest.mark.parametrize("profile", [NB2, PRO, LITE, FLASH_25])
def test_every_profile_prices_and_counts_tokens_for_each_size_it_accepts(
    profile: ModelProfile,
) -> None:
    assert set(profile.price_usd) == set(profile.image_sizes)
    assert set(profile.image_tokens) == set(profile.image_sizes)
    assert profile.context_tokens > max(profile.image_tokens.values())


def test_each_model_lists_its_tiers_and_the_override_setting_wins() -> None:
    assert model_tiers("gemini-3.1-flash-image", {}) == ("standard", "flex", "batch")
    assert model_tiers("gemini-3-pro-image-preview", {}) == ("standard", "batch")  # no flex
    override = {"gemini-3-pro-image": ["standard", "flex"]}
    assert model_tiers("gemini-3-pro-image-preview", override) == ("standard", "flex")
    assert model_tiers("gemini-3.1-flash-image", override) == ("standard", "flex", "batch")
