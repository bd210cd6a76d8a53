"""CPU time of the quality table's numbers (worker/quality.py) per transition, at 2K and 4K.

Prints, for JPEG and PNG turn images of the pixel sizes the catalog gives for 16:9 at 2K and 4K
(and a 2K -> 4K "same scene at 4K" turn), the median wall time and process CPU time of one
`turn_metrics(prompt, previous, current)` call: reduced decodes, ORB + RANSAC homography, ΔE2000
change map, edit region, SSIM, colour precision, sharpness and noise. The baseline, measured in the
same run, is the signal editqueue stored before: SSIM and changed fraction of 256 px decodes.
The images are a natural photo (scikit-image's astronaut) upscaled with grain added, so their JPEG
sizes are close to the API's.

    .venv/bin/python bench/quality.py [--repeats N]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable
from typing import Any, cast

import numpy as np
from PIL import Image
from skimage import data as samples
from skimage.metrics import structural_similarity

from shared.catalog import pixel_size
from worker.quality import analysis_size, decode_reduced, resized, turn_metrics

ASPECT_RATIO = "16:9"
SIZES = ("2K", "4K")
GRAIN_SIGMA = 14.0
JPEG_QUALITY = 95
PROMPT = "Change wall color to warm sage green (#8FAF8A). Keep all else exactly."
UPSCALE_PROMPT = "Generate same scene at 4K resolution, no further changes."
BASELINE_LONG_SIDE_PX = 256
BASELINE_CHANGED_LEVEL = 32
_ssim = cast(Callable[..., Any], structural_similarity)


def photo(width: int, height: int, seed: int) -> Image.Image:
    """A natural image at the given size, with film grain so it compresses like a photo."""
    base = Image.fromarray(samples.astronaut()).resize((width, height), Image.Resampling.BICUBIC)
    rng = np.random.default_rng(seed)
    noisy = np.asarray(base, dtype=np.float32) + rng.normal(0, GRAIN_SIGMA, (height, width, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        image.save(out, "JPEG", quality=JPEG_QUALITY)
    else:
        image.save(out, "PNG", compress_level=1)
    return out.getvalue()


def edited(image: Image.Image) -> Image.Image:
    """Turn n: the upper half repainted sage green (the article's turn 2)."""
    copy = image.copy()
    wall = (0, 0, image.width, image.height // 2)
    copy.paste((0x8F, 0xAF, 0x8A), wall, Image.new("L", (wall[2], wall[3]), 140))
    return copy


def baseline(previous: bytes, current: bytes) -> dict[str, float]:
    """The old signal: SSIM and changed fraction of 256 px decodes."""
    cur = decode_reduced(current, BASELINE_LONG_SIDE_PX)
    cur = resized(cur, analysis_size(cur.shape[1], cur.shape[0], BASELINE_LONG_SIDE_PX))
    prev = resized(decode_reduced(previous, BASELINE_LONG_SIDE_PX), (cur.shape[1], cur.shape[0]))
    gray_prev = np.asarray(Image.fromarray(prev).convert("L"), np.float32)
    gray_cur = np.asarray(Image.fromarray(cur).convert("L"), np.float32)
    ssim = float(_ssim(gray_prev, gray_cur, data_range=255))
    moved = np.abs(prev.astype(np.int16) - cur.astype(np.int16)) > BASELINE_CHANGED_LEVEL
    return {"ssim": ssim, "changed_fraction": float(moved.any(axis=2).mean())}


def measure(
    compute: Callable[[bytes, bytes], dict[str, float]],
    previous: bytes,
    current: bytes,
    repeats: int,
) -> tuple[float, float, dict[str, float]]:
    walls, cpus = [], []
    metrics: dict[str, float] = {}
    for _ in range(repeats):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        metrics = compute(previous, current)
        cpus.append(time.process_time() - cpu0)
        walls.append(time.perf_counter() - wall0)
    return statistics.median(walls), statistics.median(cpus), metrics


def report(label: str, previous: bytes, current: bytes, repeats: int, prompt: str = PROMPT) -> None:
    def table(before: bytes, after: bytes) -> dict[str, float]:
        return turn_metrics(prompt, before, after)

    wall_s, cpu_s, metrics = measure(table, previous, current, repeats)
    _, base_cpu_s, _ = measure(baseline, previous, current, repeats)
    print(
        f"  {label}, {len(current) / 1e6:4.1f} MB: {wall_s * 1000:6.1f} ms wall, "
        f"{cpu_s * 1000:6.1f} ms CPU = {cpu_s / base_cpu_s:4.2f} x the SSIM-only baseline "
        f"({base_cpu_s * 1000:5.1f} ms)  [scale {metrics['scale']:.3f}, changed outside "
        f"{metrics.get('changed_outside', 0.0):.1%}, detail x{metrics['sharpness_ratio']:.2f}]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    print(f"quality table per transition (median of {args.repeats}, one thread)")
    images = {}
    for size in SIZES:
        width, height = pixel_size(ASPECT_RATIO, size)
        before = photo(width, height, seed=1)
        after = edited(before)
        images[size] = before
        for fmt in ("JPEG", "PNG"):
            label = f"{size} {fmt:<4} {width}x{height}"
            report(label, encode(before, fmt), encode(after, fmt), args.repeats)
    same_2k, same_4k = encode(edited(images["2K"]), "JPEG"), encode(edited(images["4K"]), "JPEG")
    report("2K -> 4K JPEG (same scene at 4K)", same_2k, same_4k, args.repeats, UPSCALE_PROMPT)


if __name__ == "__main__":
    main()
