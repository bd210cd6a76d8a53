"""What a turn costs, from the price table per model and image size (overridable)."""

from __future__ import annotations

from typing import Any

from shared.catalog import TIER_PRICE_FACTOR, ModelProfile

# Input (text + image) price per million prompt tokens, official pricing page (NB2 preview era).
INPUT_USD_PER_MTOK = {
    "gemini-3.1-flash-image": 0.50,
    "gemini-3-pro-image": 2.00,
    "gemini-3.1-flash-lite-image": 0.25,
    "gemini-2.5-flash-image": 0.30,
}


def image_price_usd(
    profile: ModelProfile, image_size: str | None, overrides: dict[str, dict[str, float]]
) -> float:
    """Price of one generated image at this size (overrides win over the built-in table)."""
    table = {**profile.price_usd, **overrides.get(profile.model_id, {})}
    size = image_size or ("1K" if "1K" in table else next(iter(table)))
    return table.get(size, max(table.values()))


def turn_cost_usd(
    profile: ModelProfile,
    image_size: str | None,
    usage: dict[str, Any],
    overrides: dict[str, dict[str, float]],
    images: int = 1,
    tier: str = "standard",
) -> float:
    """Output images at the table price plus prompt tokens at the input rate, times the tier's
    factor (Batch and Flex bill half of the standard price, input and output alike)."""
    prompt_tokens = int(usage.get("promptTokenCount", 0) or 0)
    input_rate = INPUT_USD_PER_MTOK.get(profile.model_id, 0.50)
    cost = images * image_price_usd(profile, image_size, overrides)
    factor = TIER_PRICE_FACTOR.get(tier, 1.0)
    return round((cost + prompt_tokens * input_rate / 1_000_000) * factor, 6)
