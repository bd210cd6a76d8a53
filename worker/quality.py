"""The numbers behind the quality table of a transition n-1 -> n (verdicts: shared/verdicts.py).

Each image is decoded once at a reduced size (JPEG `draft()` lets libjpeg scale while decoding, so a
4K image is never decoded at full size) and looked at on two scales of its longer side:

- DETAIL_LONG_SIDE_PX to twice that (whatever whole-factor reduction gets there: 688 px for the
  API's 2K and 4K sizes): ORB features and the homography n-1 -> n (worker/geometry.py),
  sharpness and noise (a blur of a few 2K pixels is still visible here);
- PIXEL_LONG_SIDE_PX: the ΔE2000 change map, the edit region, SSIM and colour shifts.

Geometry comes first: when the camera moved, turn n-1 is warped into turn n's frame before any
pixel is compared, so a zoom shows as a zoom (drift), not as "everything changed". Only the pixels
the warped frame covers are compared. When the prompt asks for new lighting or a new look, turn
n-1's colours are first fitted to turn n's (per channel, least squares), so the change map shows
what moved beyond the requested global change; the colour shift outside the edit is still reported.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from shared.verdicts import named_colour
from worker import colours, regions, sharpness
from worker.geometry import (
    Camera,
    Features,
    Matrix,
    camera_change,
    coverage,
    features,
    rescaled,
    warp,
)
from worker.intent import asks_for_a_new_look, asks_to_reframe, keeps_the_rest
from worker.similarity import ssim

DETAIL_LONG_SIDE_PX = 512
# 256 px keeps the per-turn CPU small: the ΔE2000 map and SSIM grow with the pixel count.
PIXEL_LONG_SIDE_PX = 256
SSIM_WINDOW_PX = 7  # scikit-image's default (worker/similarity.py computes it the same way)
# Below these the camera did not move: comparing unwarped pixels avoids interpolation blur.
WARP_ABOVE = {"scale": 0.004, "shift": 0.004, "rotation_deg": 0.2, "aspect": 0.004}
MIN_COLOUR_PIXELS = 20

Pixels = NDArray[np.uint8]
Mask = NDArray[np.bool_]


def analysis_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """The size an image is looked at: its aspect ratio, at most `long_side` on the longer side."""
    scale = min(1.0, long_side / max(width, height, 1))
    return max(1, round(width * scale)), max(1, round(height * scale))


def decode_reduced(data: bytes, long_side: int = DETAIL_LONG_SIDE_PX) -> Pixels:
    """RGB pixels with `long_side` to twice that on the longer side (reduced by whole factors,
    which JPEG's draft mode and Pillow's box `reduce` do quickly)."""
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", analysis_size(*image.size, long_side))  # JPEG: 1/2, 1/4 or 1/8 scale
        rgb = image.convert("RGB")
    factor = max(rgb.size) // long_side
    if factor > 1:
        rgb = rgb.reduce(factor)
    return np.asarray(rgb, dtype=np.uint8)


def resized(pixels: Pixels, size: tuple[int, int]) -> Pixels:
    """Pixels at `size` (width, height), area-averaged when shrinking."""
    if (pixels.shape[1], pixels.shape[0]) == size:
        return pixels
    return np.asarray(cv2.resize(pixels, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def _scaled(pixels: Pixels, long_side: int) -> Pixels:
    return resized(pixels, analysis_size(pixels.shape[1], pixels.shape[0], long_side))


def _gray(rgb: Pixels) -> Pixels:
    return np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), dtype=np.uint8)


def _size(pixels: Pixels) -> tuple[int, int]:
    return pixels.shape[1], pixels.shape[0]


@dataclass(frozen=True)
class Pair:
    """Turn n-1 drawn in turn n's frame, turn n, and the pixels both cover (None = all)."""

    previous: Pixels
    current: Pixels
    valid: Mask | None


def _moved(camera: Camera) -> bool:
    change = {
        "scale": abs(camera.scale - 1.0),
        "shift": camera.shift,
        "rotation_deg": abs(camera.rotation_deg),
        "aspect": abs(camera.aspect - 1.0),
    }
    return any(change[name] > limit for name, limit in WARP_ABOVE.items())


def aligned(previous: Pixels, current: Pixels, camera: Camera, geo_widths: tuple[int, int]) -> Pair:
    """`previous` in `current`'s frame (warped when the camera moved, else resized)."""
    size = _size(current)
    same_aspect = abs(previous.shape[1] / previous.shape[0] - size[0] / size[1]) < 0.01
    if camera.homography is None or (same_aspect and not _moved(camera)):
        return Pair(resized(previous, size), current, None)
    into = geo_widths[0] / previous.shape[1]
    out = size[0] / geo_widths[1]
    matrix = rescaled(camera.homography, into, out)
    valid = coverage(matrix, _size(previous), size)
    return Pair(warp(previous, matrix, size), current, ~regions.grow(~valid, 1))


def _lab_pair(pair: Pair, new_look: bool) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    previous = _fitted(pair.previous, pair.current, pair.valid) if new_look else pair.previous
    return colours.to_lab(previous), colours.to_lab(pair.current)


def _fitted(previous: Pixels, current: Pixels, valid: Mask | None) -> Pixels:
    """`previous` with each channel mapped by the least-squares line onto `current`'s."""
    chosen = np.ones(previous.shape[:2], bool) if valid is None else valid
    out = np.empty(previous.shape, dtype=np.float32)
    for channel in range(3):
        x = previous[..., channel].astype(np.float32)
        slope, offset = _line(x[chosen], current[..., channel][chosen].astype(np.float32))
        out[..., channel] = x * slope + offset
    return np.clip(out, 0, 255).astype(np.uint8)


def _line(x: NDArray[np.float32], y: NDArray[np.float32]) -> tuple[float, float]:
    """The least-squares line y = slope * x + offset (np.polyfit's, in closed form: a tenth of
    its time); a constant x gives the flat line through y's mean."""
    if x.size == 0:
        return 1.0, 0.0
    mx, my = float(x.mean(dtype=np.float64)), float(y.mean(dtype=np.float64))
    dx, dy = x.astype(np.float64) - mx, y.astype(np.float64) - my
    variance = float((dx * dx).sum())  # not np.dot: BLAS would start a thread pool
    if variance == 0.0:
        return 0.0, my
    slope = float((dx * dy).sum()) / variance
    return slope, my - slope * mx


def _mean(values: NDArray[Any]) -> float | None:
    return float(values.mean()) if values.size else None


def _preservation(
    pair: Pair, new_look: bool, mask: bytes | None
) -> tuple[dict[str, float], Mask, Mask]:
    """Change map, region, and the preservation numbers; also returns (region, changed)."""
    lab_prev, lab_cur = _lab_pair(pair, new_look)
    structural = colours.delta_e(lab_prev, lab_cur)
    raw = structural if not new_look else colours.delta_e(colours.to_lab(pair.previous), lab_cur)
    valid = np.ones(structural.shape, bool) if pair.valid is None else pair.valid
    changed = regions.changed_map(structural) & valid
    region = (
        regions.mask_region(mask, _size(pair.current))
        if mask
        else regions.estimated_region(changed)
    )
    inside, outside = region & valid, ~region & valid
    window = min(SSIM_WINDOW_PX, *pair.current.shape[:2])
    window -= 1 - window % 2  # odd, and no wider than the image
    mssim, ssim_map = ssim(_gray(pair.previous), _gray(pair.current), window, data_range=255)
    numbers: dict[str, float | None] = {
        "ssim": float(mssim),
        "changed_fraction": _mean(changed[valid]),
        "region_fraction": _mean(region[valid]),
        "region_from_mask": 1.0 if mask else 0.0,
        "changed_inside": _mean(changed[inside]),
        "changed_outside": _mean(changed[outside]),
        "ssim_outside": _mean(ssim_map[outside]),
        "de_mean_outside": _mean(raw[outside]),
        "de_p95_outside": float(np.percentile(raw[outside], 95)) if outside.any() else None,
    }
    kept = {k: round(v, 4) for k, v in numbers.items() if v is not None}
    return kept, region, changed


def _precision(prompt: str, current: Pixels, region: Mask, changed: Mask) -> dict[str, float]:
    """ΔE2000 between the colour the prompt names and the median of the pixels that changed."""
    named = named_colour(prompt)
    if named is None:
        return {}
    painted = region & changed
    if painted.sum() < MIN_COLOUR_PIXELS:
        painted = region  # nothing changed: how far the region is from the colour asked for
    if painted.sum() < MIN_COLOUR_PIXELS:
        return {}
    labs = colours.to_lab(current[painted][None, :, :])[0]
    return {"colour_de": round(colours.delta_e_to(labs, named[1]), 3)}


def _degradation(
    previous: Pixels, current: Pixels, touched: Mask, camera: Camera
) -> dict[str, float]:
    """Sharpness and noise of turn n against turn n-1 over the pixels the edit left alone.

    Neither image is warped (interpolation would soften one of them): when the camera moved, the
    untouched area is mapped back into turn n-1's own pixels instead.
    """
    size = _size(current)
    keep = ~regions.grow(touched, 1)
    keep_cur = cv2.resize(keep.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    if camera.homography is not None and _moved(camera):
        back: Matrix = np.linalg.inv(camera.homography).astype(np.float64)
        keep_prev = warp(keep_cur.astype(np.uint8), back, _size(previous)) > 0
    else:
        previous, keep_prev = resized(previous, size), keep_cur
    prev, cur = _gray(previous), _gray(current)
    return {
        "sharpness_ratio": round(
            sharpness.ratio(
                sharpness.sharpness(cur, keep_cur), sharpness.sharpness(prev, keep_prev)
            ),
            4,
        ),
        "noise_ratio": round(
            sharpness.ratio(
                sharpness.noise(cur, keep_cur),
                sharpness.noise(prev, keep_prev),
                sharpness.NOISE_FLOOR,
            ),
            4,
        ),
    }


def image_metrics(detail: Pixels) -> dict[str, float]:
    """Sharpness and noise of one image at its detail size (the session's trend uses these)."""
    gray = _gray(detail)
    return {
        "sharpness": round(sharpness.sharpness(gray), 3),
        "noise": round(sharpness.noise(gray), 4),
    }


def intent_metrics(prompt: str) -> dict[str, float]:
    """What the prompt asks for, stored beside the numbers the verdicts weigh it against."""
    return {
        "keeps_rest": float(keeps_the_rest(prompt)),
        "asks_reframe": float(asks_to_reframe(prompt)),
        "asks_new_look": float(asks_for_a_new_look(prompt)),
    }


def image_features(detail: Pixels) -> Features:
    """The ORB features the camera change matches, of one decoded (detail-size) image."""
    return features(_gray(detail))


def transition_metrics(
    prompt: str,
    previous: Pixels,
    current: Pixels,
    mask: bytes | None = None,
    known: tuple[Features, Features] | None = None,
) -> dict[str, float]:
    """Every number of the transition from decoded (detail-size) turn n-1 to turn n; `known`:
    both images' `image_features` when they were kept from before."""
    camera = camera_change(_gray(previous), _gray(current), known)
    widths = (previous.shape[1], current.shape[1])
    small = aligned(
        _scaled(previous, PIXEL_LONG_SIDE_PX), _scaled(current, PIXEL_LONG_SIDE_PX), camera, widths
    )
    numbers, region, changed = _preservation(small, asks_for_a_new_look(prompt), mask)
    numbers |= camera.numbers()
    numbers |= _precision(prompt, small.current, region, changed)
    touched = region | changed if small.valid is None else region | changed | ~small.valid
    numbers |= _degradation(previous, current, touched, camera)
    return numbers | intent_metrics(prompt)


def turn_metrics(
    prompt: str,
    previous: bytes | Pixels | None,
    current: bytes | Pixels,
    mask: bytes | None = None,
    known: tuple[Features, Features] | None = None,
) -> dict[str, float]:
    """The metrics stored with turn n (turn 1, without a predecessor: the image's own); images
    as their bytes or as already decoded (`decode_reduced`) pixels, and their features if known."""
    cur = decode_reduced(current) if isinstance(current, bytes) else current
    numbers = image_metrics(cur)
    if previous is not None:
        prev = decode_reduced(previous) if isinstance(previous, bytes) else previous
        numbers |= transition_metrics(prompt, prev, cur, mask, known)
    return {name: value for name, value in numbers.items() if math.isfinite(value)}  # JSON-safe
