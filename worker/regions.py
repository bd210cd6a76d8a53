"""The edit's region: the user's mask (white = may change) or an estimate from the change map.

The change map is the per-pixel ΔE2000 above CHANGE_DE, opened to drop JPEG speckle. Without a
mask, the region is the largest connected component of the (slightly dilated) change map: one
edit is one area, and what changed apart from it counts as changed outside. The region is grown
by REGION_MARGIN_PX so the edit's own soft edge does not count against it.
"""

from __future__ import annotations

import io
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

Mask = NDArray[np.bool_]

CHANGE_DE = 10.0  # ΔE2000 above JPEG and re-rendering noise (~1-4), below a repaint
SPECKLE_PX = 3  # opening kernel: isolated changed pixels are noise
JOIN_PX = 5  # changed areas this close belong to the same edit
REGION_MARGIN_PX = 2
MASK_WHITE_ABOVE = 127


def _kernel(size: int) -> NDArray[np.uint8]:
    return np.asarray(cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)), dtype=np.uint8)


def _as_mask(image: NDArray[Any]) -> Mask:
    result: Mask = np.asarray(image, dtype=np.uint8) > 0
    return result


def changed_map(delta_e: NDArray[np.float32], threshold: float = CHANGE_DE) -> Mask:
    """Pixels whose colour moved by more than `threshold` ΔE2000, without isolated specks."""
    raw = (delta_e > threshold).astype(np.uint8)
    return _as_mask(cv2.morphologyEx(raw, cv2.MORPH_OPEN, _kernel(SPECKLE_PX)))


def grow(mask: Mask, px: int = REGION_MARGIN_PX) -> Mask:
    """The mask dilated by `px` pixels."""
    if px <= 0 or not mask.any():
        return mask
    return _as_mask(cv2.dilate(mask.astype(np.uint8), _kernel(2 * px + 1)))


def estimated_region(changed: Mask) -> Mask:
    """The largest connected changed area (near areas joined), grown by the margin."""
    if not changed.any():
        return changed
    joined = grow(changed, JOIN_PX // 2)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        joined.astype(np.uint8), connectivity=8
    )
    if count <= 1:
        return changed
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return grow((labels == largest) & changed)


def mask_region(data: bytes, size: tuple[int, int]) -> Mask:
    """The user's mask image at `size` (width, height): True where the edit may change pixels."""
    with Image.open(io.BytesIO(data)) as image:
        gray = image.convert("L").resize(size, Image.Resampling.NEAREST)
    return grow(np.asarray(gray, dtype=np.uint8) > MASK_WHITE_ABOVE)
