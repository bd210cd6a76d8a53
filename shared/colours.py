"""Colours a prompt names (`#RRGGBB` or a small table of names) and CIEDE2000 distances.

Lab is CIELAB under D65 from sRGB (scikit-image's `rgb2lab`); ΔE2000 is scikit-image's
`deltaE_ciede2000`. A hex code in the prompt wins over a name; of several names the longest
("sage green" before "green") and then the first wins. A name counts only when the prompt is
about colour (paint, colour, tint ...): "a lamp with an orange glow" asks for no colour match.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray
from skimage.color import deltaE_ciede2000, rgb2lab

Rgb = tuple[int, int, int]
FloatArray = NDArray[np.float32]

_rgb2lab = cast(Callable[..., Any], rgb2lab)  # scikit-image ships no annotations
_delta_e = cast(Callable[..., Any], deltaE_ciede2000)

HEX_RE = re.compile(r"#([0-9a-fA-F]{6})\b")
# Common interior and paint names with a typical sRGB value (CSS values where CSS has the name).
NAMED_COLOURS: dict[str, str] = {
    "white": "#FFFFFF",
    "off-white": "#F5F3EE",
    "black": "#000000",
    "charcoal": "#36454F",
    "grey": "#808080",
    "gray": "#808080",
    "red": "#FF0000",
    "burgundy": "#800020",
    "terracotta": "#E2725B",
    "orange": "#FFA500",
    "yellow": "#FFFF00",
    "mustard": "#E1AD01",
    "cream": "#FFFDD0",
    "beige": "#F5F5DC",
    "ivory": "#FFFFF0",
    "brown": "#8B4513",
    "olive": "#808000",
    "green": "#008000",
    "sage": "#9CAF88",
    "sage green": "#9CAF88",
    "teal": "#008080",
    "blue": "#0000FF",
    "navy": "#000080",
    "navy blue": "#000080",
    "sky blue": "#87CEEB",
    "lavender": "#E6E6FA",
    "purple": "#800080",
    "pink": "#FFC0CB",
}
COLOUR_WORDS_RE = re.compile(r"\b(?:re)?(?:paint|colou?r|tint|dye|stain)(?:ed|s|ing)?\b", re.I)
_NAMES_RE = re.compile(
    r"\b(" + "|".join(re.escape(n) for n in sorted(NAMED_COLOURS, key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)


def parse_hex(text: str) -> Rgb:
    """`#8FAF8A` -> (143, 175, 138)."""
    digits = text.lstrip("#")
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def named_colour(prompt: str) -> tuple[str, Rgb] | None:
    """The colour a prompt asks for, as (how it was written, sRGB), or None."""
    match = HEX_RE.search(prompt)
    if match is not None:
        return match.group(0), parse_hex(match.group(1))
    found = _NAMES_RE.search(prompt) if COLOUR_WORDS_RE.search(prompt) else None
    if found is None:
        return None
    return found.group(1), parse_hex(NAMED_COLOURS[found.group(1).lower()])


def to_lab(pixels: NDArray[np.uint8]) -> FloatArray:
    """CIELAB (D65) of sRGB pixels of shape (..., 3)."""
    scaled = pixels.astype(np.float32) / np.float32(255.0)
    return np.asarray(_rgb2lab(scaled), dtype=np.float32)


def delta_e(lab1: FloatArray, lab2: FloatArray) -> FloatArray:
    """Per-pixel CIEDE2000 of two Lab arrays of the same shape."""
    return np.asarray(_delta_e(lab1, lab2), dtype=np.float32)


def delta_e_to(labs: FloatArray, colour: Rgb) -> float:
    """CIEDE2000 between the median Lab of some pixels (shape (N, 3)) and an sRGB colour."""
    target = to_lab(np.array([[colour]], dtype=np.uint8))[0, 0]
    median = np.median(labs, axis=0).astype(np.float32)
    return float(delta_e(median[None, :], target[None, :])[0])
