"""`editqueue run` end to end on the embedded default: real task code, emulator, no servers."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 180


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("EDITQUEUE_") and k != "GEMINI_API_KEY"
    }
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "producer", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )


def test_run_living_room_writes_five_images_a_strip_and_a_report(tmp_path: Path) -> None:
    out = tmp_path / "living-room"

    done = run_cli(
        "run", str(ROOT / "examples" / "living-room.yaml"), "--out", str(out), cwd=tmp_path
    )

    assert done.returncode == 0, done.stderr[-3000:]
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "completed"
    sizes = [(t["image"]["width"], t["image"]["height"]) for t in status["turns"]]
    assert sizes == [(2752, 1536)] * 4 + [(5504, 3072)]
    for turn in status["turns"]:
        data = (out / f"turn_{turn['index']:02d}.jpg").read_bytes()
        assert hashlib.sha256(data).hexdigest() == turn["image"]["blob"]
    assert (out / "strip.jpg").stat().st_size > 0
    assert "turn_05.jpg" in (out / "report.html").read_text()
    assert f"{status['session_id']}: completed, 5 turns" in done.stdout
    assert_quality_table(out, status)


def assert_quality_table(out: Path, status: dict[str, Any]) -> None:
    """Four verdicts with numbers per transition, and no false alarm on the clean session."""
    rows = [t["quality"] for t in status["turns"][1:]]
    verdicts = [{axis: cell["verdict"] for axis, cell in row.items()} for row in rows]
    assert all(v != "weak" for row in verdicts for v in row.values()), verdicts
    assert verdicts[0]["precision"] == "strong"  # the sage wall: #8FAF8A is named
    assert rows[0]["precision"]["numbers"]["colour_de"] < 3
    assert rows[2]["preservation"]["note"].startswith("a new look is asked for")  # evening
    html = (out / "report.html").read_text()
    assert "Quality per transition" in html
    for transition in ("1 → 2", "2 → 3", "3 → 4", "4 → 5"):
        assert f"<th>{transition}</th>" in html
    assert html.count("scale ") >= 4 and html.count("SSIM outside") >= 4


def test_run_of_a_batch_with_a_blocked_turn_exits_1_and_reports_every_session(
    tmp_path: Path,
) -> None:
    spec = tmp_path / "batch.jsonl"
    spec.write_text(
        '{"session_id": "fine", "image_size": "512", "turns": [{"prompt": "a room"}]}\n'
        '{"session_id": "blocked", "image_size": "512", "turns": [{"prompt": "a room"}, '
        '{"prompt": "something refused !fault=blocked"}]}\n'
    )
    out = tmp_path / "out"

    done = run_cli("run", str(spec), "--out", str(out), cwd=tmp_path)

    assert done.returncode == 1, done.stderr[-3000:]
    fine = json.loads((out / "fine" / "status.json").read_text())
    blocked = json.loads((out / "blocked" / "status.json").read_text())
    assert fine["state"] == "completed"
    assert blocked["state"] == "failed"
    assert blocked["turns"][1]["error"]["kind"] == "blocked"
    assert (out / "blocked" / "turn_01.jpg").is_file()
    assert (out / "blocked" / "report.html").is_file()
