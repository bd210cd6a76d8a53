"""Faults that return a normal 200 with a flawed image, for testing the quality table.

Each imitates a way image models misbehave on a "keep all else" edit: the camera moves
(`frame_zoom`, `frame_pan`), a colour cast covers the whole picture (`colour_cast`), the edit
spills outside the area it was asked for (`edit_spill`), the requested colour comes out a little
off (`colour_off`), or the picture goes soft (`blur`). Chosen like every other fault: by seeded
rate or by a `!fault=NAME` trigger in the prompt.
"""

from __future__ import annotations

from PIL import Image, ImageFilter

IMAGE_FAULTS = frozenset(
    {"frame_zoom", "frame_pan", "colour_cast", "edit_spill", "colour_off", "blur"}
)
# Applied to the finished frame (after the caption), as a model's whole output would be.
FRAME_FAULTS = frozenset({"frame_zoom", "frame_pan", "colour_cast", "blur"})

ZOOM = 1.08  # the scene looks 8 % bigger
PAN = 0.05  # the frame slides by 5 % of its size (with the slight zoom a crop needs)
CAST_GAINS = (1.0, 0.95, 0.84)  # a warm yellow cast over everything
BLUR_RADIUS_PER_PX = 1 / 700  # of the width: ~4 px at 2K
SPILL_BOX = (0.74, 0.70, 0.96, 0.94)  # lower right, on the floor: away from the walls
SPILL_COLOUR = (200, 40, 160)
COLOUR_OFF_RGB = (12, -10, 8)  # added to the requested colour: ΔE2000 8.7 on #8FAF8A


def _cropped(image: Image.Image, box: tuple[float, float, float, float]) -> Image.Image:
    w, h = image.size
    pixels = (round(box[0] * w), round(box[1] * h), round(box[2] * w), round(box[3] * h))
    return image.resize(image.size, Image.Resampling.BICUBIC, box=pixels)


def _cast(image: Image.Image) -> Image.Image:
    lut = [min(255, int(v * g)) for g in CAST_GAINS for v in range(256)]
    return image.point(lut)


def apply_frame_fault(image: Image.Image, name: str | None) -> Image.Image:
    """The finished frame after a frame fault (unchanged for any other name)."""
    if name == "frame_zoom":
        margin = (1 - 1 / ZOOM) / 2
        return _cropped(image, (margin, margin, 1 - margin, 1 - margin))
    if name == "frame_pan":
        return _cropped(image, (PAN, PAN, 1.0, 1.0))
    if name == "colour_cast":
        return _cast(image)
    if name == "blur":
        radius = max(1.5, image.width * BLUR_RADIUS_PER_PX)
        return image.filter(ImageFilter.GaussianBlur(radius))
    return image


def spill(image: Image.Image, colour: tuple[int, int, int] | None) -> None:
    """Paint a patch of floor that the edit was not about."""
    w, h = image.size
    box = (
        int(SPILL_BOX[0] * w),
        int(SPILL_BOX[1] * h),
        int(SPILL_BOX[2] * w),
        int(SPILL_BOX[3] * h),
    )
    image.paste(colour or SPILL_COLOUR, box)


def off_colour(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    """The requested colour, slightly wrong."""
    r, g, b = (max(0, min(255, c + d)) for c, d in zip(colour, COLOUR_OFF_RGB, strict=True))
    return r, g, b
