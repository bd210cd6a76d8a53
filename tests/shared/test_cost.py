"""Turn cost: one image at the table price for its size, plus prompt tokens at the input rate."""

from __future__ import annotations

import pytest

from shared.catalog import (
    FLASH_25,
    INPUT_USD_PER_MTOK,
    LITE,
    NB2,
    PRO,
    ModelProfile,
    image_price_usd,
    profile_for,
    turn_cost_usd,
)


@pytest.mark.parametrize(
    ("profile", "size", "price"),
    [
        (NB2, "512", 0.045),
        (NB2, "1K", 0.067),
        (NB2, "2K", 0.101),
        (NB2, "4K", 0.151),
        (NB2, None, 0.067),
        (PRO, "1K", 0.134),
        (PRO, "2K", 0.134),
        (PRO, "4K", 0.24),
        (PRO, None, 0.134),
        (PRO, "512", 0.24),  # a size without a price costs the model's dearest image
        (LITE, "1K", 0.0336),
        (LITE, "4K", 0.0336),
        (FLASH_25, None, 0.039),
        (FLASH_25, "2K", 0.039),
    ],
)
def test_image_price_per_model_and_size(
    profile: ModelProfile, size: str | None, price: float
) -> None:
    assert image_price_usd(profile, size, {}) == price


def test_an_override_replaces_only_the_sizes_it_names() -> None:
    overrides = {"gemini-3.1-flash-image": {"4K": 0.2}}
    assert image_price_usd(NB2, "4K", overrides) == 0.2
    assert image_price_usd(NB2, "2K", overrides) == 0.101


def test_an_override_for_another_model_does_not_apply() -> None:
    overrides = {"gemini-3-pro-image": {"1K": 9.0}}
    assert image_price_usd(NB2, "1K", overrides) == 0.067
    assert image_price_usd(PRO, "1K", overrides) == 9.0


def test_an_override_can_add_a_size_the_table_lacks() -> None:
    overrides = {"gemini-2.5-flash-image": {"2K": 0.5}}
    assert image_price_usd(FLASH_25, "2K", overrides) == 0.5
    assert image_price_usd(FLASH_25, "4K", overrides) == 0.5  # now the dearest known size


def test_an_unknown_model_is_priced_like_nb2_and_takes_overrides_under_its_own_id() -> None:
    profile = profile_for("gemini-4-flash-image")
    assert image_price_usd(profile, "2K", {}) == 0.101
    assert image_price_usd(profile, "2K", {"gemini-4-flash-image": {"2K": 0.05}}) == 0.05


def test_the_builtin_tables_are_not_mutated_by_overrides() -> None:
    image_price_usd(NB2, "1K", {"gemini-3.1-flash-image": {"1K": 1.0}})
    assert NB2.price_usd["1K"] == 0.067


@pytest.mark.parametrize(
    ("profile", "size", "prompt_tokens", "images", "expected"),
    [
        (NB2, "2K", 0, 1, 0.101),
        (NB2, "2K", 10_000, 1, 0.106),  # 0.101 + 10k x 0.50/M
        (NB2, "4K", 1_000_000, 1, 0.651),
        (PRO, "4K", 5_000, 1, 0.25),  # 0.24 + 5k x 2.00/M
        (LITE, None, 4_000, 1, 0.0346),  # 0.0336 + 4k x 0.25/M
        (FLASH_25, None, 1_000, 1, 0.0393),  # 0.039 + 1k x 0.30/M
        (NB2, "1K", 0, 2, 0.134),
        (NB2, "1K", 0, 0, 0.0),
        (LITE, "1K", 1, 1, 0.0336),  # 0.03360025 rounded to 6 places
    ],
)
def test_turn_cost_is_images_plus_prompt_tokens(
    profile: ModelProfile, size: str | None, prompt_tokens: int, images: int, expected: float
) -> None:
    usage = {"promptTokenCount": prompt_tokens, "candidatesTokenCount": 1680}
    assert turn_cost_usd(profile, size, usage, {}, images=images) == expected


@pytest.mark.parametrize("usage", [{}, {"promptTokenCount": None}, {"promptTokenCount": 0}])
def test_turn_cost_without_prompt_tokens_is_the_image_price(usage: dict[str, object]) -> None:
    assert turn_cost_usd(NB2, "2K", usage, {}) == 0.101


def test_turn_cost_applies_overrides() -> None:
    overrides = {"gemini-3-pro-image": {"2K": 0.3}}
    assert turn_cost_usd(PRO, "2K", {"promptTokenCount": 1000}, overrides) == 0.302


def test_unknown_model_input_rate_defaults_to_nb2s() -> None:
    profile = profile_for("gemini-4-flash-image")
    assert turn_cost_usd(profile, "1K", {"promptTokenCount": 1_000_000}, {}) == 0.567
    assert INPUT_USD_PER_MTOK["gemini-3.1-flash-image"] == 0.50


def test_a_preview_model_takes_the_overrides_of_its_ga_id() -> None:
    profile = profile_for("gemini-3-pro-image-preview")
    assert image_price_usd(profile, "4K", {"gemini-3-pro-image": {"4K": 0.3}}) == 0.3
    # Overrides are looked up by the profile's GA id, so one keyed by the preview id is not used.
    assert image_price_usd(profile, "4K", {"gemini-3-pro-image-preview": {"4K": 0.3}}) == 0.24


@pytest.mark.parametrize(("tier", "factor"), [("standard", 1.0), ("flex", 0.5), ("batch", 0.5)])
def test_flex_and_batch_bill_half_the_standard_price_input_and_output(
    tier: str, factor: float
) -> None:
    usage = {"promptTokenCount": 10_000}
    standard = turn_cost_usd(NB2, "2K", usage, {})
    assert turn_cost_usd(NB2, "2K", usage, {}, tier=tier) == pytest.approx(standard * factor)
