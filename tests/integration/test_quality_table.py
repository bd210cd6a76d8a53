"""The quality table end to end: each emulator image fault trips its verdict on its transition.

One 2K session through real workers, Redis, moto's S3 server and the emulator over HTTP. The
faults are scripted with `!fault=NAME` in the prompt; clean turns sit between them. The spill turn
carries a `mask:` (the walls), so the patch of floor it paints is outside the requested region.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from tests.integration.services import Stack
from tests.integration.test_spine import wait_state

pytestmark = pytest.mark.integration

KEEP = "Keep all else exactly."
# (prompt, the axes that must be weak on this transition)
TURNS: list[tuple[str, list[str]]] = [
    ("A contemporary living room, straight-on view.", []),
    (f"Change wall color to warm sage green (#8FAF8A). {KEEP} !fault=colour_off", ["precision"]),
    (f"Add a tall walnut bookshelf. {KEEP} !fault=frame_zoom", ["drift"]),
    (f"Add a floor lamp. {KEEP} !fault=colour_cast", ["preservation"]),
    (f"Add a plant by the window. {KEEP} !fault=blur", ["quality"]),
    (f"Repaint the walls lilac (#C8A2C8). {KEEP}", []),
    (f"Repaint the walls sage (#8FAF8A). {KEEP} !fault=edit_spill", ["preservation"]),
    (f"Add a side table. {KEEP} !fault=frame_pan", ["drift"]),
    (f"Add a small rug. {KEEP}", []),
]
SPILL_TURN = 7
BATCH = "b_quality_faults"


def write_spec(tmp: Path) -> Path:
    walls = Image.new("L", (320, 180), 0)
    walls.paste(255, (0, 0, 320, 110))  # the top 61 %: white = may change
    walls.save(tmp / "walls.png")
    lines = ["aspect_ratio: '16:9'", "image_size: 2K", "turns:"]
    for index, (prompt, _) in enumerate(TURNS, start=1):
        lines.append(f"  - prompt: {json.dumps(prompt)}")
        if index == SPILL_TURN:
            lines.append("    mask: walls.png")
    spec = tmp / "faults.yaml"
    spec.write_text("\n".join(lines) + "\n")
    return spec


def test_each_image_fault_trips_its_verdict_and_nothing_else(stack: Stack, tmp_path: Path) -> None:
    stack.start_worker()
    out = stack.cli("submit", str(write_spec(tmp_path)), "--batch-id", BATCH)
    assert out.returncode == 0, out.stderr
    sid = out.stdout.split()[0]

    doc = wait_state(stack, sid, {"completed", "failed"}, timeout_s=120)

    assert doc["state"] == "completed"
    weak = {
        t["index"]: [axis for axis, cell in t["quality"].items() if cell["verdict"] == "weak"]
        for t in doc["turns"]
        if t["quality"] is not None
    }
    assert weak == {n: axes for n, (_, axes) in enumerate(TURNS, start=1) if n > 1}
    spill = doc["turns"][SPILL_TURN - 1]["quality"]["preservation"]["numbers"]
    assert spill["region_from_mask"] == 1.0 and spill["changed_outside"] > 0.05

    view = stack.cli("status", "--batch", BATCH)
    assert "review   1 session(s) need a look:" in view.stdout, view.stdout
    assert f"{sid}  turn 2:precision 3:drift 4:preservation" in view.stdout
    exported = stack.cli("export", "--batch", BATCH, str(tmp_path / "out"))
    assert exported.returncode == 0, exported.stderr
    with (tmp_path / "out" / "summary.csv").open() as summary:
        row = next(csv.DictReader(summary))
    assert row["review"].split() == [
        "2:precision",
        "3:drift",
        "4:preservation",
        "5:quality",
        "7:preservation",
        "8:drift",
    ]
    report = (tmp_path / "out" / sid / "report.html").read_text()
    assert report.count('class="verdict verdict-weak"') == 12  # table cell + turn badge, 6 turns
