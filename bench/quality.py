"""CPU time of the quality signals (shared/quality.py) per transition, at 2K and 4K.

Prints, for JPEG and PNG turn images of the pixel sizes the catalog gives for 16:9 at 2K and 4K,
the median wall time and process CPU time of one `turn_metrics(prompt, previous, current)` call
(both images decoded at reduced size, SSIM and changed fraction). The images are a natural photo
(scikit-image's astronaut) upscaled with grain added, so their JPEG sizes are close to the API's.

    .venv/bin/python bench/quality.py [--repeats N]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import numpy as np
from PIL import Image
from skimage import data as samples

from shared.catalog import pixel_size
from shared.quality import turn_metrics

ASPECT_RATIO = "16:9"
SIZES = ("2K", "4K")
GRAIN_SIGMA = 14.0
JPEG_QUALITY = 95
PROMPT = "Change wall color to warm sage green (#8FAF8A). Keep all else exactly."


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


def measure(previous: bytes, current: bytes, repeats: int) -> tuple[float, float, dict[str, float]]:
    walls, cpus = [], []
    metrics: dict[str, float] = {}
    for _ in range(repeats):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        metrics = turn_metrics(PROMPT, previous, current)
        cpus.append(time.process_time() - cpu0)
        walls.append(time.perf_counter() - wall0)
    return statistics.median(walls), statistics.median(cpus), metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    print(f"quality signals per transition (median of {args.repeats}, one thread)")
    for size in SIZES:
        width, height = pixel_size(ASPECT_RATIO, size)
        before = photo(width, height, seed=1)
        after = edited(before)
        for fmt in ("JPEG", "PNG"):
            previous, current = encode(before, fmt), encode(after, fmt)
            wall_s, cpu_s, metrics = measure(previous, current, args.repeats)
            print(
                f"  {size} {fmt:<4} {width}x{height}, {len(current) / 1e6:4.1f} MB: "
                f"{wall_s * 1000:6.1f} ms wall, {cpu_s * 1000:6.1f} ms CPU  "
                f"(ssim {metrics['ssim']:.3f}, changed {metrics['changed_fraction']:.1%})"
            )


if __name__ == "__main__":
    main()
