"""What each Gemini image model accepts and costs (tables from the API docs, dated in the README).

Unknown model ids fall back to the NB2 profile so a renamed GA id keeps working; prices can be
overridden through settings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MODEL = "gemini-3.1-flash-image"

BASE_ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
NB2_EXTRA_ASPECT_RATIOS = ("1:4", "4:1", "1:8", "8:1")

# Pixel size of a generated image at 1K for each aspect ratio (official tables); 512 halves it,
# 2K doubles it, 4K quadruples it. The 1:4/4:1/1:8/8:1 rows are estimates (multiples of 16).
PIXELS_1K: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "2:3": (848, 1264),
    "3:2": (1264, 848),
    "3:4": (896, 1200),
    "4:3": (1200, 896),
    "4:5": (928, 1152),
    "5:4": (1152, 928),
    "9:16": (768, 1376),
    "16:9": (1376, 768),
    "21:9": (1584, 672),
    "1:4": (512, 2048),
    "4:1": (2048, 512),
    "1:8": (368, 2944),
    "8:1": (2944, 368),
}
SIZE_SCALE = {"512": 0.5, "1K": 1.0, "2K": 2.0, "4K": 4.0}
# Average encoded bytes per pixel of a returned high-quality JPEG (NB2 2K ≈ 3.5 MB / 4.2 Mpx).
JPEG_BYTES_PER_PIXEL = 0.83
INLINE_REQUEST_LIMIT_BYTES = 100 * 1024 * 1024
TEXT_CHARS_PER_TOKEN = 4
USER_IMAGE_TOKENS = 1120  # media_resolution_high cap for an input image

# Tiers (see README "Tiers"): Google documents Batch for gemini-2.5-flash-image,
# gemini-3-pro-image and gemini-3.1-flash-lite-image (cookbook Batch_mode model picker); for
# gemini-3.1-flash-image it is our reading. Flex is documented for text models only, so Flex on
# the Flash image models is our reading too, and Pro is left without it until someone confirms.
# Both are overridable per model with EDITQUEUE_TIER_OVERRIDES.
ALL_TIERS = ("standard", "flex", "batch")
NO_FLEX = ("standard", "batch")
# Batch and Flex bill 50 % of the standard price (Google's optimization and batch-mode pages).
TIER_PRICE_FACTOR = {"standard": 1.0, "flex": 0.5, "batch": 0.5}


@dataclass(frozen=True)
class ModelProfile:
    """Limits, token counts and prices of one image model."""

    model_id: str
    aspect_ratios: tuple[str, ...]
    image_sizes: tuple[str, ...]
    context_tokens: int
    image_tokens: dict[str, int] = field(default_factory=dict)
    price_usd: dict[str, float] = field(default_factory=dict)
    tiers: tuple[str, ...] = ALL_TIERS

    def supports(self, aspect_ratio: str | None, image_size: str | None) -> bool:
        """True when the model accepts this aspect ratio and image size."""
        ar_ok = aspect_ratio is None or aspect_ratio in self.aspect_ratios
        size_ok = image_size is None or image_size in self.image_sizes
        return ar_ok and size_ok


NB2 = ModelProfile(
    model_id="gemini-3.1-flash-image",
    aspect_ratios=BASE_ASPECT_RATIOS + NB2_EXTRA_ASPECT_RATIOS,
    image_sizes=("512", "1K", "2K", "4K"),
    context_tokens=131_072,
    image_tokens={"512": 747, "1K": 1120, "2K": 1680, "4K": 2520},
    price_usd={"512": 0.045, "1K": 0.067, "2K": 0.101, "4K": 0.151},
)
PRO = ModelProfile(
    model_id="gemini-3-pro-image",
    aspect_ratios=BASE_ASPECT_RATIOS,
    image_sizes=("1K", "2K", "4K"),
    context_tokens=65_536,
    image_tokens={"1K": 1120, "2K": 1120, "4K": 2000},
    price_usd={"1K": 0.134, "2K": 0.134, "4K": 0.24},
    tiers=NO_FLEX,
)
LITE = ModelProfile(
    model_id="gemini-3.1-flash-lite-image",
    aspect_ratios=BASE_ASPECT_RATIOS + NB2_EXTRA_ASPECT_RATIOS,
    image_sizes=("1K",),
    context_tokens=131_072,
    image_tokens={"1K": 1120},
    price_usd={"1K": 0.0336},
)
FLASH_25 = ModelProfile(
    model_id="gemini-2.5-flash-image",
    aspect_ratios=BASE_ASPECT_RATIOS,
    image_sizes=("1K",),
    context_tokens=32_768,
    image_tokens={"1K": 1290},
    price_usd={"1K": 0.039},
)

_PROFILES = {p.model_id: p for p in (NB2, PRO, LITE, FLASH_25)}


def profile_for(model_id: str) -> ModelProfile:
    """The profile of a model id; `-preview` ids map to their GA twin, unknown ids to NB2."""
    base = model_id.removeprefix("models/").removesuffix("-preview")
    return _PROFILES.get(base, ModelProfile(**{**NB2.__dict__, "model_id": model_id}))


def pixel_size(aspect_ratio: str | None, image_size: str | None) -> tuple[int, int]:
    """Width and height the model returns for an aspect ratio and size (defaults 1:1, 1K)."""
    width, height = PIXELS_1K.get(aspect_ratio or "1:1", PIXELS_1K["1:1"])
    scale = SIZE_SCALE.get(image_size or "1K", 1.0)
    return (int(width * scale), int(height * scale))


def estimated_image_bytes(aspect_ratio: str | None, image_size: str | None) -> int:
    """A conservative size of one returned JPEG at this aspect ratio and size."""
    width, height = pixel_size(aspect_ratio, image_size)
    return int(width * height * JPEG_BYTES_PER_PIXEL)


def model_tiers(model_id: str, overrides: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """The tiers a model is sold in: the override for its id (or its GA twin), else the table."""
    profile = profile_for(model_id)
    for key in (model_id, model_id.removeprefix("models/"), profile.model_id):
        if key in overrides:
            return tuple(overrides[key])
    return profile.tiers


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
