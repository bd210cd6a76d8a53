"""The image models this emulator serves, with the limits Google's docs give for them.

The emulator stands in for Google's API, so it keeps its own table and imports nothing of
editqueue's: a catalog mistake in editqueue must not be mirrored by the stand-in that tests it.
"""

from __future__ import annotations

from dataclasses import dataclass

REQUEST_LIMIT_BYTES = 100 * 1024 * 1024  # generateContent's inline request limit
CHARS_PER_TOKEN = 4  # Google's rule of thumb for text tokens
INPUT_IMAGE_TOKENS = 1120  # an input image at media_resolution_high

_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
_TALL_WIDE = ("1:4", "4:1", "1:8", "8:1")  # the 3.1 Flash models only

# Width x height at 1K per aspect ratio (the image-generation page's tables); 512 is half, 2K
# twice, 4K four times. The 1:4/4:1/1:8/8:1 rows are estimates in multiples of 16.
_AT_1K = {
    "1:1": (1024, 1024), "2:3": (848, 1264), "3:2": (1264, 848), "3:4": (896, 1200),
    "4:3": (1200, 896), "4:5": (928, 1152), "5:4": (1152, 928), "9:16": (768, 1376),
    "16:9": (1376, 768), "21:9": (1584, 672), "1:4": (512, 2048), "4:1": (2048, 512),
    "1:8": (368, 2944), "8:1": (2944, 368),
}  # fmt: skip
_SCALE = {"512": 0.5, "1K": 1.0, "2K": 2.0, "4K": 4.0}


@dataclass(frozen=True)
class ImageModel:
    """What one model accepts, and the output tokens one image costs per size."""

    aspect_ratios: tuple[str, ...]
    image_tokens: dict[str, int]

    @property
    def image_sizes(self) -> tuple[str, ...]:
        """The image sizes the model accepts."""
        return tuple(self.image_tokens)


_FLASH_31 = ImageModel(_RATIOS + _TALL_WIDE, {"512": 747, "1K": 1120, "2K": 1680, "4K": 2520})
MODELS = {
    "gemini-3.1-flash-image": _FLASH_31,
    "gemini-3-pro-image": ImageModel(_RATIOS, {"1K": 1120, "2K": 1120, "4K": 2000}),
    "gemini-3.1-flash-lite-image": ImageModel(_RATIOS + _TALL_WIDE, {"1K": 1120}),
    "gemini-2.5-flash-image": ImageModel(_RATIOS, {"1K": 1290}),
}


def model_for(model_id: str) -> ImageModel:
    """The model behind an id (`models/` and `-preview` spellings too); unknown ids act as 3.1
    Flash, so a renamed id keeps working against the emulator."""
    return MODELS.get(model_id.removeprefix("models/").removesuffix("-preview"), _FLASH_31)


def pixel_size(aspect_ratio: str | None, image_size: str | None) -> tuple[int, int]:
    """Width and height of a generated image (defaults 1:1 and 1K)."""
    width, height = _AT_1K.get(aspect_ratio or "1:1", _AT_1K["1:1"])
    scale = _SCALE.get(image_size or "1K", 1.0)
    return (int(width * scale), int(height * scale))
