"""No-reference detail and noise of an image (grayscale, reduced size), for degradation trends.

- `sharpness`: variance of the 4-neighbour Laplacian over the variance of the pixels themselves
  (higher = more fine detail; dividing by contrast keeps a darker evening from reading as a blur).
  It depends on the scene, so it is compared between images of one scene at one size.
- `noise`: Immerkær's fast noise estimate (sigma in 255 levels) from the response to a mask that
  cancels image structure up to second order (J. Immerkær, "Fast Noise Variance Estimation", 1996).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

Gray = NDArray[np.uint8]
Mask = NDArray[np.bool_]

_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
_NOISE_SCALE = math.sqrt(math.pi / 2) / 6


def _laplacian(gray: Gray) -> NDArray[np.float32]:
    return np.asarray(cv2.Laplacian(gray, cv2.CV_32F, ksize=1), np.float32)


def _noise_response(gray: Gray) -> NDArray[np.float32]:
    response = cv2.filter2D(gray, cv2.CV_32F, _NOISE_KERNEL)
    return np.abs(np.asarray(response, dtype=np.float32))


def _inner(shape: tuple[int, ...], mask: Mask | None) -> NDArray[np.uint8]:
    """The pixels to count as an 8-bit mask: the filters' border pixels are extrapolated."""
    chosen = np.zeros(shape[:2], dtype=np.uint8)
    chosen[1:-1, 1:-1] = 1 if mask is None else mask[1:-1, 1:-1] != 0
    return chosen


def _variance(values: NDArray[np.uint8] | NDArray[np.float32], chosen: NDArray[np.uint8]) -> float:
    _, std = cv2.meanStdDev(values, mask=chosen)  # one pass in C, over the chosen pixels only
    return float(std[0, 0]) ** 2


def sharpness(gray: Gray, mask: Mask | None = None) -> float:
    """Laplacian variance / pixel variance over the masked pixels (all when None); 0 if flat."""
    chosen = _inner(gray.shape, mask)
    if not cv2.countNonZero(chosen):
        return 0.0
    spread = _variance(gray, chosen)
    return _variance(_laplacian(gray), chosen) / spread if spread > 0.0 else 0.0


def noise(gray: Gray, mask: Mask | None = None) -> float:
    """Immerkær's noise sigma over the masked pixels (all when mask is None); 0 when empty."""
    chosen = _inner(gray.shape, mask)
    if not cv2.countNonZero(chosen):
        return 0.0
    return float(_NOISE_SCALE * cv2.mean(_noise_response(gray), mask=chosen)[0])


RATIO_CAP = 99.0  # stored metrics are finite JSON numbers
# Noise below one level (of 255) is invisible; as a denominator it would turn the JPEG artefacts
# of a sharp turn after a very smooth one into a "noise x3".
NOISE_FLOOR = 1.0


def ratio(current: float, previous: float, floor: float = 0.0) -> float:
    """current / previous (both at least `floor`), capped; 1.0 when there is nothing to compare."""
    current, previous = max(current, floor), max(previous, floor)
    if previous <= 0.0:
        return 1.0
    return min(RATIO_CAP, current / previous)
