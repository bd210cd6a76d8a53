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
    return np.asarray(cv2.Laplacian(gray.astype(np.float32), cv2.CV_32F, ksize=1), np.float32)


def _noise_response(gray: Gray) -> NDArray[np.float32]:
    response = cv2.filter2D(gray.astype(np.float32), cv2.CV_32F, _NOISE_KERNEL)
    return np.abs(np.asarray(response, dtype=np.float32))


def _where(values: NDArray[np.float32], mask: Mask | None) -> NDArray[np.float32]:
    inner = values[1:-1, 1:-1]  # the filters' border pixels are extrapolated
    if mask is None:
        return inner
    return inner[mask[1:-1, 1:-1]]


def sharpness(gray: Gray, mask: Mask | None = None) -> float:
    """Laplacian variance / pixel variance over the masked pixels (all when None); 0 if flat."""
    values = _where(_laplacian(gray), mask)
    contrast = _where(gray.astype(np.float32), mask)
    spread = float(contrast.var()) if contrast.size else 0.0
    return float(values.var()) / spread if spread > 0.0 else 0.0


def noise(gray: Gray, mask: Mask | None = None) -> float:
    """Immerkær's noise sigma over the masked pixels (all when mask is None); 0 when empty."""
    values = _where(_noise_response(gray), mask)
    return float(_NOISE_SCALE * values.mean()) if values.size else 0.0


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
