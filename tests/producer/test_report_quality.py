"""Quality signals in the session report and the status document."""

from __future__ import annotations

import json
from pathlib import Path

from producer import api
from shared.runtime import Services
from tests.producer.conftest import commit_turn, spec_of

KEPT = {"ssim": 0.9312, "changed_fraction": 0.121, "drift": 0.0}
DRIFTED = {"ssim": 0.31, "changed_fraction": 0.55, "drift": 1.0}


def session_with_metrics(services: Services, tmp_path: Path) -> str:
    sid = api.submit_session(services, spec_of("a", "b", "c"), base_dir=tmp_path)
    first = commit_turn(services, sid, 1)
    for index, metrics in ((2, KEPT), (3, DRIFTED)):
        result = first.model_copy(update={"index": index, "metrics": metrics})
        services.repo.commit_result(sid, result)
    return sid


def test_status_turns_carry_the_stored_metrics(services: Services, tmp_path: Path) -> None:
    sid = session_with_metrics(services, tmp_path)

    doc = json.loads(api.session_status(services, sid).model_dump_json())

    assert [t["metrics"] for t in doc["turns"]] == [{}, KEPT, DRIFTED]


def test_the_report_shows_ssim_changed_share_and_a_drift_badge(
    services: Services, tmp_path: Path
) -> None:
    sid = session_with_metrics(services, tmp_path)

    html = api.export(services, sid, tmp_path / "out").read_text()

    assert "SSIM 0.931 · changed 12.1%" in html
    assert "SSIM 0.310 · changed 55.0%" in html
    assert html.count('class="badge drift"') == 2  # the turn's badge and the header's
    assert '<span class="badge drift">turn 3</span>' in html
