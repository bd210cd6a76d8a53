"""Quality signals for a transition n-1 -> n: structural similarity, changed area, framing drift.

Both images are decoded at a reduced size (JPEG `draft()` lets libjpeg scale while decoding, so a
4K image is never decoded at full size) and compared at ANALYSIS_LONG_SIDE_PX on their longer side.
When the sizes differ, turn n-1 is resized to turn n's analysis size (a changed aspect ratio is a
change of framing, and the stretch shows as low similarity).

- `ssim`: scikit-image's structural similarity of the grayscale images (1.0 = identical).
- `changed_fraction`: the share of pixels where some RGB channel moved by more than
  CHANGED_LEVEL of 255 levels (12.5 %): above JPEG and re-rendering noise, below a repaint.
- `drift`: 1.0 when the prompt asks to keep everything else ("keep all else", "preserve", ...)
  but the structure did not survive (SSIM below DRIFT_SSIM_BELOW, or nearly every pixel changed).
  A lighting change moves colours, not structure, so it is not drift.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from skimage.metrics import structural_similarity

# 256 px keeps the per-turn CPU small (a 2-core worker at 25 turns/s): at 512 px SSIM was ~20 ms
# of ~24 ms worker CPU per turn and cost the makespan benchmark 10 % efficiency.
ANALYSIS_LONG_SIDE_PX = 256
SSIM_WINDOW_PX = 7  # scikit-image's default
CHANGED_LEVEL = 32
DRIFT_SSIM_BELOW = 0.5
DRIFT_CHANGED_ABOVE = 0.95
KEEP_THE_REST = re.compile(
    r"keep (?:all|everything|the rest)(?: else)?"
    r"|no (?:further|other) changes?"
    r"|preserv(?:e|es|ing)"
    r"|unchanged",
    re.IGNORECASE,
)

Pixels = NDArray[np.uint8]
_ssim = cast(Callable[..., Any], structural_similarity)  # scikit-image ships no annotations


def analysis_size(
    width: int, height: int, long_side: int = ANALYSIS_LONG_SIDE_PX
) -> tuple[int, int]:
    """The size an image is compared at: its aspect ratio, `long_side` on the longer side."""
    scale = min(1.0, long_side / max(width, height, 1))
    return max(1, round(width * scale)), max(1, round(height * scale))


def decode_reduced(data: bytes, size: tuple[int, int] | None = None) -> Image.Image:
    """RGB pixels at `size` (default: the analysis size of the image's own aspect ratio)."""
    with Image.open(io.BytesIO(data)) as image:
        target = size or analysis_size(*image.size)
        image.draft("RGB", target)  # JPEG only: decode at 1/2, 1/4 or 1/8 scale
        rgb = image.convert("RGB")
    if rgb.size != target:
        rgb = rgb.resize(target, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return rgb


def _pixels(image: Image.Image) -> Pixels:
    return np.asarray(image, dtype=np.uint8)


def _window(width: int, height: int) -> int:
    """SSIM's window: 7 px, or the largest odd size a tiny image allows."""
    side = min(SSIM_WINDOW_PX, width, height)
    return max(1, side if side % 2 else side - 1)


def compare(previous: Image.Image, current: Image.Image) -> dict[str, float]:
    """SSIM and changed fraction of two RGB images of the same size."""
    # float32, not the float64 scikit-image makes of uint8: half the CPU (every turn pays it),
    # and the same SSIM to far below the 4 decimals kept.
    gray_prev = _pixels(previous.convert("L")).astype(np.float32)
    gray_cur = _pixels(current.convert("L")).astype(np.float32)
    window = _window(*current.size)
    ssim = float(_ssim(gray_prev, gray_cur, data_range=255, win_size=window))
    delta = np.abs(_pixels(previous).astype(np.int16) - _pixels(current).astype(np.int16))
    moved = delta > CHANGED_LEVEL
    # Channel by channel: a reduction over the last axis of 3 is ten times slower.
    changed = float(np.mean(moved[..., 0] | moved[..., 1] | moved[..., 2]))
    return {"ssim": round(ssim, 4), "changed_fraction": round(changed, 4)}


def transition_metrics(previous: bytes, current: bytes) -> dict[str, float]:
    """`{"ssim", "changed_fraction"}` of turn n (`current`) against turn n-1 (`previous`)."""
    cur = decode_reduced(current)
    prev = decode_reduced(previous, cur.size)
    return compare(prev, cur)


def asks_to_keep_the_rest(prompt: str) -> bool:
    """True when the prompt asks to leave everything but the edit alone."""
    return KEEP_THE_REST.search(prompt) is not None


def is_drift(prompt: str, metrics: dict[str, float]) -> bool:
    """A "keep all else" turn whose structure did not survive the edit."""
    if not asks_to_keep_the_rest(prompt):
        return False
    ssim = metrics.get("ssim", 1.0)
    changed = metrics.get("changed_fraction", 0.0)
    return ssim < DRIFT_SSIM_BELOW or changed > DRIFT_CHANGED_ABOVE


def turn_metrics(prompt: str, previous: bytes, current: bytes) -> dict[str, float]:
    """The metrics stored with turn n: SSIM, changed fraction and the drift flag (0.0 or 1.0)."""
    metrics = transition_metrics(previous, current)
    metrics["drift"] = 1.0 if is_drift(prompt, metrics) else 0.0
    return metrics
