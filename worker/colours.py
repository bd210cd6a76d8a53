"""CIEDE2000 colour distances: Lab is CIELAB under D65 from sRGB (scikit-image's `rgb2lab`);
ΔE2000 is scikit-image's `deltaE_ciede2000`. Which colour a prompt names is read in
shared/verdicts.py (`named_colour`), where `editqueue status` reaches it without scikit-image.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray
from skimage.color import deltaE_ciede2000, rgb2lab

from shared.verdicts import Rgb

FloatArray = NDArray[np.float32]

_rgb2lab = cast(Callable[..., Any], rgb2lab)  # scikit-image ships no annotations
_delta_e = cast(Callable[..., Any], deltaE_ciede2000)


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
