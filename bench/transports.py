"""Bytes uploaded and wall time per turn: replay (generateContent with the history) against the
Interactions API transport (previous_interaction_id, only the new input).

One 10-turn 2K 16:9 session per transport, run by `editqueue run`'s in-process worker against
the emulator through a loopback proxy throttled to 100 Mbit/s each way (bench/throttle.py).
Turn 1 edits a grainy ~3.5 MB photo, so every answer is photo-sized like the real API's 2K JPEGs.
Per turn it prints the request bytes the worker sent (`upload_bytes` of the committed result) and
the API call's wall time (connect to last response byte, through the link); per session the
bytes the proxy saw going up, and the session's wall time. The emulator answers after
--latency-s (default 2 s; the real API takes ~20 s, which adds the same to both transports).

    .venv/bin/python bench/transports.py [--turns 10] [--mbit 100] [--latency-s 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from fleet import grainy_jpeg
from pydantic import SecretStr
from throttle import ThrottledProxy

from emulator import EmulatorConfig, start_emulator
from producer.embedded import run_specs
from producer.specs import load_specs
from shared.config import load_settings
from shared.models import SessionState
from shared.status_document import SessionStatus

EDITS = (
    "Change wall color to warm sage green (#8FAF8A). Keep all else exactly.",
    "Add a tall walnut bookshelf on the right wall. Preserve all prior elements.",
    "Change lighting to warm evening, floor lamp on. Keep composition unchanged.",
    "Add a large fern by the window. Keep all else exactly.",
    "Replace the coffee table with a round marble one. Keep all else exactly.",
    "Add a wool rug under the sofa. Keep all else exactly.",
    "Hang a large abstract painting above the sofa. Keep all else exactly.",
    "Add two linen cushions on the sofa. Keep all else exactly.",
    "Open the curtains fully. Keep all else exactly.",
)


@dataclass(frozen=True)
class Run:
    """One session's figures."""

    transport: str
    status: SessionStatus
    wall_s: float
    proxy_up_bytes: int

    def uploads(self) -> list[int]:
        return [t.upload_bytes or 0 for t in self.status.turns]

    def latencies(self) -> list[float]:
        return [t.latency_s or 0.0 for t in self.status.turns]


def write_spec(folder: Path, transport: str, turns: int) -> Path:
    (folder / "room.jpg").write_bytes(grainy_jpeg(2752, 1536, seed=3))
    lines = [
        f"transport: {transport}",
        "aspect_ratio: '16:9'",
        "image_size: 2K",
        "turns:",
        "  - prompt: 'Stage this living room: light grey sofa, walnut coffee table, floor lamp.'",
        "    images: [room.jpg]",
    ]
    lines += [f"  - prompt: {EDITS[i % len(EDITS)]!r}" for i in range(turns - 1)]
    path = folder / f"{transport}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_one(transport: str, turns: int, mbit: float, latency_s: float, work: Path) -> Run:
    with start_emulator(EmulatorConfig(seed=11, latency_s=latency_s)) as emulator:
        parts = urlsplit(emulator.url)
        proxy = ThrottledProxy((parts.hostname or "127.0.0.1", parts.port or 80), mbit)
        try:
            settings = load_settings().model_copy(
                update={"api_base_url": proxy.url, "api_key": SecretStr("bench-key")}
            )
            items = load_specs(write_spec(work, transport, turns))
            start = time.monotonic()
            result = run_specs(settings, items, work / transport, show_progress=False)
            wall_s = time.monotonic() - start
        finally:
            proxy.close()
    status = result.statuses[0]
    if status.state is not SessionState.COMPLETED:
        raise SystemExit(f"{transport}: session ended {status.state.value}")
    return Run(transport, status, wall_s, proxy.up.bytes)


def report(replay: Run, chained: Run) -> None:
    print("turn  replay bytes  interactions bytes   ratio  replay s  interactions s  ratio")
    up = zip(replay.uploads(), chained.uploads(), strict=True)
    rows = zip(up, replay.latencies(), chained.latencies(), strict=True)
    for n, ((r_up, i_up), r_s, i_s) in enumerate(rows, 1):
        print(
            f"{n:>4}  {r_up:>12,}  {i_up:>18,}  {r_up / max(i_up, 1):>7.1f}  "
            f"{r_s:>8.2f}  {i_s:>14.2f}  {r_s / max(i_s, 1e-9):>5.2f}"
        )
    r_total, i_total = sum(replay.uploads()), sum(chained.uploads())
    print(
        f"uploaded per session: replay {r_total:,} bytes, interactions {i_total:,} bytes "
        f"(ratio {r_total / max(i_total, 1):.1f}x); seen going up at the proxy: "
        f"{replay.proxy_up_bytes:,} vs {chained.proxy_up_bytes:,}"
    )
    later_r, later_i = replay.uploads()[1:], chained.uploads()[1:]
    if later_r:
        print(
            f"turns 2+ mean upload: replay {sum(later_r) / len(later_r):,.0f} bytes, "
            f"interactions {sum(later_i) / len(later_i):,.0f} bytes"
        )
    r_mean = sum(replay.latencies()) / len(replay.latencies())
    i_mean = sum(chained.latencies()) / len(chained.latencies())
    print(
        f"API time per turn (mean): replay {r_mean:.2f} s, interactions {i_mean:.2f} s "
        f"(ratio {r_mean / i_mean:.2f}x)"
    )
    images = [t.image.bytes for t in replay.status.turns if t.image]
    mean_image = sum(images) / len(images)
    print(
        f"session wall time: replay {replay.wall_s:.1f} s, interactions {chained.wall_s:.1f} s "
        f"(ratio {replay.wall_s / chained.wall_s:.2f}x); mean image {mean_image:,.0f} bytes; "
        f"cost ${replay.status.cost_usd:.3f} vs ${chained.status.cost_usd:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--mbit", type=float, default=100.0, help="link speed each way")
    parser.add_argument("--latency-s", type=float, default=2.0, help="emulator answer delay")
    args = parser.parse_args()
    print(
        f"{args.turns}-turn 2K sessions, {args.mbit:g} Mbit/s link, "
        f"emulator latency {args.latency_s:g} s"
    )
    with tempfile.TemporaryDirectory(prefix="bench-transports-") as tmp:
        work = Path(tmp)
        replay = run_one("replay", args.turns, args.mbit, args.latency_s, work)
        chained = run_one("interactions", args.turns, args.mbit, args.latency_s, work)
    report(replay, chained)


if __name__ == "__main__":
    main()
