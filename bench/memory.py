"""Peak resident memory with SESSIONS turns in flight, each re-sending a history of 5 big images.

- ours: one `editqueue worker --pool threads --concurrency SESSIONS` process. SESSIONS sessions
  are prepared directly in the store (moto's S3 server), each with 5 committed turns whose images
  are distinct ~3.5 MB JPEGs (a 2K image's size; signed as the emulator would sign them), so
  every turn 6 replays ~17 MB of images (~23 MB of base64). The worker's blob cache starts empty:
  it streams the blobs from S3 into the cache, then streams each request body from the cache.
- the in-memory implementation (bench/inmemory_peer.py, the article's way): a separate process
  holding each session's history as base64 strings in `contents`, building the request JSON in
  memory and posting it with `requests`, SESSIONS threads at once.

The emulator's latency keeps every call open long enough for all SESSIONS to be in flight at once
(checked from its call log). Peak RSS is VmHWM from /proc/PID/status (no psutil needed).

    .venv/bin/python bench/memory.py [--sessions N] [--latency-s S]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fleet import API_KEY, Fleet, fleet, grainy_jpeg, peak_rss_mb, rss_mb, wait_until

from emulator.signatures import Signer, secret_for
from shared.broker import dispatch
from shared.config import load_settings
from shared.services import build_services
from shared.session_records import SessionRecord
from shared.turn_records import BlobRef, ImageInfo, ResultPart, TurnRequest, TurnResult

MODEL = "gemini-3.1-flash-image"
EMULATOR_SEED = 3  # bench/fleet.py starts the emulator with --seed 3: its signing secret
ASPECT_RATIO, IMAGE_SIZE, WIDTH, HEIGHT = "16:9", "2K", 2752, 1536
HISTORY_TURNS = 5
TARGET_RATIO = 0.35
PEER_SCRIPT = Path(__file__).with_name("inmemory_peer.py")
PROMPTS = (
    "A contemporary living room, large window, white walls, oak floor, grey sofa.",
    "Change wall color to warm sage green (#8FAF8A). Keep all else exactly.",
    "Add a tall walnut bookshelf on the right wall. Preserve all prior elements and colors.",
    "Change lighting to warm evening, floor lamp on. Keep composition and furniture unchanged.",
    "Add a large plant by the window. Keep all else exactly.",
    "Same scene, no further changes.",
)


def base_images(count: int) -> list[bytes]:
    """`count` grainy 2752x1536 JPEGs of about 3.5 MB (a 2K answer's size)."""
    return [grainy_jpeg(WIDTH, HEIGHT, seed=k) for k in range(count)]


def unique(jpeg: bytes, tag: str) -> bytes:
    """The same picture with a JPEG comment segment, so every session's blobs are its own."""
    comment = tag.encode()
    segment = b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment
    return jpeg[:2] + segment + jpeg[2:]


def histories(sessions: int) -> list[list[bytes]]:
    """Per session, its 5 history images (distinct bytes everywhere)."""
    bases = base_images(HISTORY_TURNS)
    return [[unique(bases[n], f"s{s}t{n}") for n in range(HISTORY_TURNS)] for s in range(sessions)]


def prepare_ours(bench: Fleet, images: list[list[bytes]]) -> list[str]:
    """Sessions with 5 committed turns and a 6th requested, written through the repository."""
    services = build_services(load_settings(**bench.settings_overrides()))
    signer = Signer(secret_for(EMULATOR_SEED, None))
    now = datetime.now(UTC)
    sids = []
    for s, history in enumerate(images):
        sid = f"mem-{s:02d}"
        record = SessionRecord(
            session_id=sid,
            model=MODEL,
            aspect_ratio=ASPECT_RATIO,
            image_size=IMAGE_SIZE,
            created_at=now,
        )
        services.repo.create_session(record)
        for n, prompt in enumerate(PROMPTS, start=1):
            services.repo.add_request(sid, TurnRequest(index=n, prompt=prompt, created_at=now))
        for n, data in enumerate(history, start=1):
            services.repo.commit_result(sid, committed(services.blobs.put(data), data, n, signer))
        sids.append(sid)
    bench.extra_env["EDITQUEUE_API_TIMEOUT_S"] = "60"
    return sids


def committed(sha256: str, data: bytes, index: int, signer: Signer) -> TurnResult:
    """A committed model turn holding one image, signed as the emulator signs its answers."""
    ref = BlobRef(sha256=sha256, size_bytes=len(data), mime_type="image/jpeg")
    part = ResultPart(
        image=ref,
        returned_mime_type="image/jpeg",
        thought_signature=signer.sign(MODEL, "image", data),
    )
    info = ImageInfo(
        blob=sha256, mime_type="image/jpeg", width=WIDTH, height=HEIGHT, bytes=len(data)
    )
    return TurnResult(
        index=index,
        parts=[part],
        image=info,
        latency_s=20.0,
        attempt=1,
        cost_usd=0.101,
        committed_at=datetime.now(UTC),
    )


def max_in_flight(calls: list[dict[str, Any]]) -> int:
    """Most calls open at one instant, from the emulator's start/end timestamps."""
    events = sorted([(c["end"], -1) for c in calls] + [(c["start"], 1) for c in calls])
    best = current = 0
    for _, step in events:
        current += step
        best = max(best, current)
    return best


def run_ours(bench: Fleet, images: list[list[bytes]]) -> dict[str, float]:
    sids = prepare_ours(bench, images)
    [worker] = bench.start_workers(1, len(sids))
    baseline = rss_mb(worker.pid)
    services = build_services(load_settings(**bench.settings_overrides()))
    bench.reset_emulator()
    for sid in sids:
        dispatch(services, sid, len(PROMPTS))
    final = len(PROMPTS)
    wait_until(
        lambda: all(services.repo.is_committed(sid, final) for sid in sids), 300, "turn 6", 1.0
    )
    peak = peak_rss_mb(worker.pid)
    calls = bench.emulator_stats()["calls"]
    bench.stop_workers()
    return {"baseline": baseline, "peak": peak, "in_flight": max_in_flight(calls)}


def write_peer_input(bench: Fleet, images: list[list[bytes]]) -> Path:
    """The peer's sessions on disk: its history images and their signatures."""
    signer = Signer(secret_for(EMULATOR_SEED, None))
    folder = bench.workdir / "peer"
    folder.mkdir()
    sessions = []
    for s, history in enumerate(images):
        files = []
        for n, data in enumerate(history):
            path = folder / f"s{s}-t{n + 1}.jpg"
            path.write_bytes(data)
            files.append({"path": str(path), "sig": signer.sign(MODEL, "image", data)})
        sessions.append(files)
    config = {
        "responseModalities": ["TEXT", "IMAGE"],
        "imageConfig": {"aspectRatio": ASPECT_RATIO, "imageSize": IMAGE_SIZE},
    }
    manifest = folder / "sessions.json"
    doc = {"sessions": sessions, "prompts": PROMPTS, "config": config, "key": API_KEY}
    manifest.write_text(json.dumps(doc))
    return manifest


def run_peer(bench: Fleet, images: list[list[bytes]]) -> dict[str, float]:
    """The in-memory implementation in its own process (its VmHWM is its own)."""
    manifest = write_peer_input(bench, images)
    bench.reset_emulator()
    args = [sys.executable, str(PEER_SCRIPT), bench.emulator_url, str(manifest)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=600, check=True)
    figures: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    figures["in_flight"] = max_in_flight(bench.emulator_stats()["calls"])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=12, help="turns in flight")
    parser.add_argument("--latency-s", type=float, default=10.0)
    args = parser.parse_args()
    images = histories(args.sessions)
    history_mb = sum(len(d) for d in images[0]) / 2**20
    print(
        f"memory: {args.sessions} turns in flight, each turn 6 of a session with {HISTORY_TURNS} "
        f"history images of {history_mb / HISTORY_TURNS:.2f} MB ({history_mb:.1f} MB raw, "
        f"{history_mb * 4 / 3:.1f} MB base64 per request); emulator latency {args.latency_s:g} s"
    )
    with fleet(args.latency_s, "--max-request-mb", "200") as bench:
        peer = run_peer(bench, images)
        ours = run_ours(bench, images)
    for name, run in (("in-memory peer", peer), ("ours (one worker)", ours)):
        growth = run["peak"] - run["baseline"]
        print(
            f"{name}: peak RSS {run['peak']:.0f} MB (at start {run['baseline']:.0f} MB, "
            f"growth {growth:.0f} MB); {run['in_flight']:.0f} calls in flight at once"
        )
    ratio = ours["peak"] / peer["peak"]
    growth = (ours["peak"] - ours["baseline"]) / (peer["peak"] - peer["baseline"])
    print(f"peak RSS ours / in-memory: {ratio:.3f} (target <= {TARGET_RATIO})")
    print(f"growth (peak - at start) ours / in-memory: {growth:.3f}")


if __name__ == "__main__":
    main()
