"""The session report: exact image bytes, the evolution strip, report.html and status.json."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from producer import sessions, submission
from producer.report import STRIP_HEIGHT_PX, TIMES, caption, image_name, short_prompt
from shared.models import TurnState
from shared.services import Services
from shared.status_document import TurnStatus
from tests.producer.conftest import commit_turn, fail_turn, jpeg_bytes, png_bytes, spec_of


def test_report_writes_every_file_with_the_exact_stored_bytes(
    services: Services, tmp_path: Path
) -> None:
    sid = submission.submit_session(
        services, spec_of("a room", "paint it", "<b>x</b>"), base_dir=tmp_path
    )
    first, second = jpeg_bytes(160, 90), png_bytes(90, 90)
    commit_turn(services, sid, 1, first)
    commit_turn(services, sid, 2, second)
    fail_turn(services, sid, 3)
    out = tmp_path / "report"

    page = sessions.export(services, sid, out)

    assert page == out / "report.html"
    assert (out / "turn_01.jpg").read_bytes() == first
    assert (out / "turn_02.png").read_bytes() == second
    assert not list(out.glob("turn_03.*"))
    doc = json.loads((out / "status.json").read_text())
    assert doc["session_id"] == sid and doc["state"] == "failed"
    html = page.read_text()
    assert 'src="turn_01.jpg"' in html and 'src="strip.jpg"' in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    assert "prompt blocked: SAFETY" in html and "$0.1340" in html


def test_the_strip_puts_turns_side_by_side_at_a_common_height(
    services: Services, tmp_path: Path
) -> None:
    sid = submission.submit_session(services, spec_of("a", "b"), base_dir=tmp_path)
    commit_turn(services, sid, 1, jpeg_bytes(1600, 900))
    commit_turn(services, sid, 2, jpeg_bytes(900, 900))

    sessions.export(services, sid, tmp_path / "out")

    with Image.open(tmp_path / "out" / "strip.jpg") as strip:
        width, height = strip.size
    assert height > STRIP_HEIGHT_PX
    assert width >= round(1600 * STRIP_HEIGHT_PX / 900) + STRIP_HEIGHT_PX


def test_image_names_take_their_extension_from_the_bytes() -> None:
    assert image_name(1, jpeg_bytes()) == "turn_01.jpg"
    assert image_name(12, png_bytes()) == "turn_12.png"


def test_captions_name_the_turn_a_short_prompt_and_the_pixel_size(
    services: Services, tmp_path: Path
) -> None:
    sid = submission.submit_session(
        services, spec_of("Add tall walnut bookshelf " * 5), base_dir=tmp_path
    )
    commit_turn(services, sid, 1, jpeg_bytes(320, 180))

    turn = sessions.session_status(services, sid).turns[0]

    assert caption(turn).startswith("Turn 1 · Add tall walnut bookshelf")
    assert caption(turn).endswith(f" · 320{TIMES}180")
    assert len(short_prompt(turn.prompt)) <= 48


def test_a_turn_without_an_image_is_captioned_with_its_state() -> None:
    turn = TurnStatus(index=3, state=TurnState.FAILED, prompt="evening light")

    assert caption(turn) == "Turn 3 · evening light · failed"
