"""Quality signals in the session report and the status document."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from producer import sessions, submission
from shared.services import Services
from shared.verdicts import AXES, QualityThresholds
from tests.producer.conftest import commit_turn, spec_of

KEPT = {
    "ssim": 0.9312,
    "changed_fraction": 0.121,
    "aligned": 1.0,
    "inliers": 240.0,
    "scale": 1.0,
    "shift": 0.0,
    "rotation_deg": 0.0,
    "aspect": 1.0,
    "region_fraction": 0.12,
    "region_from_mask": 0.0,
    "changed_inside": 0.95,
    "changed_outside": 0.0,
    "ssim_outside": 0.99,
    "de_mean_outside": 0.3,
    "de_p95_outside": 1.2,
    "sharpness_ratio": 1.0,
    "noise_ratio": 1.0,
    "keeps_rest": 1.0,
    "asks_reframe": 0.0,
    "asks_new_look": 0.0,
}
DRIFTED = KEPT | {"ssim": 0.71, "scale": 1.08, "shift": 0.02}


def session_with_metrics(services: Services, tmp_path: Path) -> str:
    sid = submission.submit_session(services, spec_of("a", "b", "c"), base_dir=tmp_path)
    first = commit_turn(services, sid, 1)
    for index, metrics in ((2, KEPT), (3, DRIFTED)):
        result = first.model_copy(update={"index": index, "metrics": metrics})
        services.repo.commit_result(sid, result)
    return sid


def test_status_turns_carry_the_stored_metrics(services: Services, tmp_path: Path) -> None:
    sid = session_with_metrics(services, tmp_path)

    doc = json.loads(sessions.session_status(services, sid).model_dump_json())

    assert [t["metrics"] for t in doc["turns"]] == [{}, KEPT, DRIFTED]


def test_status_turns_carry_the_four_verdicts(services: Services, tmp_path: Path) -> None:
    sid = session_with_metrics(services, tmp_path)

    doc = json.loads(sessions.session_status(services, sid).model_dump_json())

    first, kept, drifted = doc["turns"]
    assert first["quality"] is None
    assert {axis: kept["quality"][axis]["verdict"] for axis in AXES} == {
        "preservation": "strong",
        "precision": None,  # the prompt names no colour
        "drift": "strong",
        "quality": "strong",
    }
    assert drifted["quality"]["drift"] == {
        "verdict": "weak",
        "note": "scale",
        "numbers": {
            "scale": 1.08,
            "shift": 0.02,
            "rotation_deg": 0.0,
            "aspect": 1.0,
            "inliers": 240.0,
        },
    }
    trend = drifted["quality"]["quality"]["numbers"]
    assert (trend["detail_since_first"], trend["noise_since_first"]) == (1.0, 1.0)


def test_the_report_shows_the_four_columns_with_numbers_and_what_needs_a_look(
    services: Services, tmp_path: Path
) -> None:
    sid = session_with_metrics(services, tmp_path)

    html = sessions.export(services, sid, tmp_path / "out").read_text()

    assert "Quality per transition" in html
    for axis in AXES:
        assert f">{axis}</th>" in html
    assert "SSIM 0.931 · changed 12.1%" in html
    assert "scale 1.080 · shift 2.0%" in html
    assert "changed outside 0.0% · SSIM outside 0.990 · ΔE outside 0.3 · p95 1.2" in html
    assert html.count('class="verdict verdict-weak"') == 2  # the table's cell and the turn's badge
    assert '<span class="badge drift">turn 3: drift</span>' in html


def test_a_threshold_setting_rejudges_stored_turns(services: Services, tmp_path: Path) -> None:
    sid = session_with_metrics(services, tmp_path)
    lenient = services.settings.model_copy(
        update={"quality": QualityThresholds(drift_scale_good=0.1)}
    )

    status = sessions.session_status(replace(services, settings=lenient), sid)

    row = status.turns[2].quality
    assert row is not None and row.drift.verdict == "good"


def test_a_slow_loss_of_detail_shows_as_a_trend_since_turn_one(
    services: Services, tmp_path: Path
) -> None:
    sid = submission.submit_session(services, spec_of("a", "b", "c"), base_dir=tmp_path)
    first = commit_turn(services, sid, 1)
    for index, ratio in ((2, 0.9), (3, 0.8)):
        metrics = KEPT | {"sharpness_ratio": ratio, "noise_ratio": 1.1}
        services.repo.commit_result(
            sid, first.model_copy(update={"index": index, "metrics": metrics})
        )

    turns = sessions.session_status(services, sid).turns

    third = turns[2].quality
    assert third is not None
    assert third.quality.numbers["detail_since_first"] == pytest.approx(0.72)
    assert third.quality.numbers["noise_since_first"] == pytest.approx(1.21)
    assert third.quality.verdict == "good"  # this step kept 80 % of the detail
