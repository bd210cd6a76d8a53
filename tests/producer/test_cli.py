"""The `editqueue` CLI: output and exit codes (0 ok, 1 failed, 2 bad input) via click's runner."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from PIL import Image

from producer import submission
from producer.cli import main
from producer.context import CliState
from producer.worker_fleet import default_processes, worker_argv
from shared.config import load_settings
from shared.services import Services
from tests.producer.conftest import RecordingEnqueuer, commit_turn, fail_turn, spec_of


def invoke(services: Services | None, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), obj=CliState(services=services))


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_submit_prints_one_session_id_per_line_and_enqueues_them(
    services: Services, enqueuer: RecordingEnqueuer, tmp_path: Path
) -> None:
    spec = write(
        tmp_path, "b.jsonl", '{"turns": [{"prompt": "a"}]}\n{"turns": [{"prompt": "b"}]}\n'
    )

    result = invoke(services, "submit", str(spec))

    assert result.exit_code == 0, result.output
    sids = result.stdout.split()
    assert len(sids) == 2
    assert enqueuer.calls == [(sids[0], 1), (sids[1], 1)]


def test_a_bad_spec_exits_2_with_the_file_line_and_field(
    services: Services, enqueuer: RecordingEnqueuer, tmp_path: Path
) -> None:
    spec = write(tmp_path, "s.yaml", "turns:\n  - prompt: a\n    image_size: 3K\n")

    result = invoke(services, "submit", str(spec))

    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {spec}:3: turns[0].image_size:")
    assert "Traceback" not in result.output
    assert enqueuer.calls == []


def test_run_with_a_bad_spec_exits_2_before_starting_anything(tmp_path: Path) -> None:
    spec = write(tmp_path, "s.yaml", "turns:\n  - promt: a\n")

    result = invoke(None, "run", str(spec), "--out", str(tmp_path / "out"))

    assert result.exit_code == 2
    assert "did you mean 'prompt'" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_missing_spec_file_is_a_usage_error(services: Services, tmp_path: Path) -> None:
    result = invoke(services, "submit", str(tmp_path / "nope.yaml"))

    assert result.exit_code == 2


def test_status_of_an_unknown_session_exits_2(services: Services) -> None:
    result = invoke(services, "status", "nope")

    assert result.exit_code == 2
    assert (
        result.stderr == "error: session nope does not exist; `editqueue status` lists sessions\n"
    )


def test_a_session_id_that_could_be_a_path_is_refused(services: Services) -> None:
    result = invoke(services, "status", "../etc")

    assert result.exit_code == 2
    assert "1-64 characters" in result.stderr


def test_status_of_a_failed_session_exits_1_and_prints_the_status_document(
    services: Services, tmp_path: Path
) -> None:
    sid = submission.submit_session(services, spec_of("a", "b"), base_dir=tmp_path)
    commit_turn(services, sid, 1)
    fail_turn(services, sid, 2)

    result = invoke(services, "status", sid, "--json")

    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["state"] == "failed"
    assert [t["state"] for t in doc["turns"]] == ["succeeded", "failed"]
    assert doc["turns"][1]["error"]["kind"] == "blocked"
    assert set(doc) >= {"session_id", "state", "model", "cost_usd", "turns"}


def test_status_of_a_completed_session_exits_0(services: Services, tmp_path: Path) -> None:
    sid = submission.submit_session(services, spec_of("a"), base_dir=tmp_path)
    commit_turn(services, sid, 1)

    result = invoke(services, "status", sid)

    assert result.exit_code == 0
    assert f"session {sid}  completed  1/1 turns" in result.stdout


def test_status_without_a_session_lists_every_session(services: Services, tmp_path: Path) -> None:
    sids = [submission.submit_session(services, spec_of("a"), base_dir=tmp_path) for _ in range(2)]

    result = invoke(services, "status")

    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["SESSION", "STATE", "TURNS"]
    assert sorted(line.split()[0] for line in lines[1:]) == sorted(sids)


def test_append_prints_the_new_turn_index(services: Services, tmp_path: Path) -> None:
    sid = submission.submit_session(services, spec_of("a"), base_dir=tmp_path)

    result = invoke(services, "append", sid, "paint it", "--image-size", "4K")

    assert result.exit_code == 0, result.output
    assert result.stdout == "2\n"
    request = services.repo.request(sid, 2)
    assert request is not None and request.image_size == "4K"


def test_append_stores_a_mask_for_the_quality_table(services: Services, tmp_path: Path) -> None:
    sid = submission.submit_session(services, spec_of("a"), base_dir=tmp_path)
    mask = tmp_path / "walls.png"
    Image.new("L", (32, 18), 255).save(mask)

    result = invoke(services, "append", sid, "paint the walls", "--mask", str(mask))

    assert result.exit_code == 0, result.output
    request = services.repo.request(sid, 2)
    assert request is not None and request.mask is not None and request.images == []
    assert services.blobs.read(request.mask.sha256) == mask.read_bytes()


def test_append_with_a_missing_mask_exits_2_naming_it(services: Services, tmp_path: Path) -> None:
    sid = submission.submit_session(services, spec_of("a"), base_dir=tmp_path)

    result = invoke(services, "append", sid, "paint it", "--mask", str(tmp_path / "gone.png"))

    assert result.exit_code == 2
    assert "mask" in result.stderr and "gone.png does not exist" in result.stderr
    assert services.repo.request(sid, 2) is None


def test_status_names_the_axes_of_a_turn_that_needs_a_look(
    services: Services, tmp_path: Path
) -> None:
    sid = submission.submit_session(services, spec_of("a", "b"), base_dir=tmp_path)
    first = commit_turn(services, sid, 1)
    metrics = {"aligned": 1.0, "scale": 1.2, "shift": 0.0, "rotation_deg": 0.0, "aspect": 1.0}
    services.repo.commit_result(sid, first.model_copy(update={"index": 2, "metrics": metrics}))

    result = invoke(services, "status", sid)

    assert "needs a look: drift (weak)" in result.stdout


def test_append_with_a_bad_image_size_names_the_option(services: Services, tmp_path: Path) -> None:
    sid = submission.submit_session(services, spec_of("a"), base_dir=tmp_path)

    result = invoke(services, "append", sid, "paint it", "--image-size", "4k")

    assert result.exit_code == 2
    assert result.stderr.startswith("error: --image-size: image_size '4k' must be one of")


def test_retry_of_a_succeeded_turn_exits_2(services: Services, tmp_path: Path) -> None:
    sid = submission.submit_session(services, spec_of("a"), base_dir=tmp_path)
    commit_turn(services, sid, 1)

    result = invoke(services, "retry", sid, "--turn", "1")

    assert result.exit_code == 2
    assert "succeeded" in result.stderr


def test_retry_of_the_failed_turn_reports_it(services: Services, tmp_path: Path) -> None:
    sid = submission.submit_session(services, spec_of("a"), base_dir=tmp_path)
    fail_turn(services, sid, 1)

    result = invoke(services, "retry", sid, "--prompt", "gentler")

    assert result.exit_code == 0, result.output
    assert result.stdout == f"retrying turn 1 of {sid}\n"


def test_fork_prints_the_new_session_id(services: Services, tmp_path: Path) -> None:
    sid = submission.submit_session(services, spec_of("a", "b"), base_dir=tmp_path)
    commit_turn(services, sid, 1)

    ok = invoke(services, "fork", sid, "--at", "1", "--session-id", "branch")
    too_far = invoke(services, "fork", sid, "--at", "2")

    assert (ok.exit_code, ok.stdout) == (0, "branch\n")
    assert too_far.exit_code == 2


def test_cancel_then_reconcile_enqueues_nothing(
    services: Services, enqueuer: RecordingEnqueuer, tmp_path: Path
) -> None:
    sid = submission.submit_session(services, spec_of("a"), base_dir=tmp_path)
    enqueuer.calls.clear()

    cancelled = invoke(services, "cancel", sid)
    reconciled = invoke(services, "reconcile")

    assert (cancelled.exit_code, reconciled.exit_code) == (0, 0)
    assert reconciled.stdout == "enqueued 0 turn(s)\n"
    assert enqueuer.calls == []


def test_export_writes_the_report(services: Services, tmp_path: Path) -> None:
    sid = submission.submit_session(services, spec_of("a"), base_dir=tmp_path)
    commit_turn(services, sid, 1)

    result = invoke(services, "export", sid, str(tmp_path / "x"))

    assert result.exit_code == 0
    assert (tmp_path / "x" / "report.html").is_file()


def test_an_invalid_http_api_setting_is_named_by_its_documented_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EDITQUEUE_API_MAX_CONCURRENCY", "0")

    result = invoke(None, "status")

    assert result.exit_code == 2
    assert result.stderr.startswith("error: invalid settings: EDITQUEUE_API_MAX_CONCURRENCY:")


def test_invalid_settings_exit_2_without_echoing_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDITQUEUE_API_TIMEOUT_S", "soon")

    result = invoke(None, "status")

    assert result.exit_code == 2
    assert result.stderr.startswith("error: invalid settings: EDITQUEUE_API_TIMEOUT_S:")
    assert "soon" not in result.stderr


def test_a_misspelt_quality_threshold_is_named_and_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDITQUEUE_QUALITY__DRIFT_SCALE_WEAK", "0.1")  # the limits are _strong/_good

    result = invoke(None, "status")

    assert result.exit_code == 2
    assert "EDITQUEUE_QUALITY__DRIFT_SCALE_WEAK: Extra inputs are not permitted" in result.stderr


def test_a_quality_threshold_is_read_from_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDITQUEUE_QUALITY__DRIFT_SCALE_GOOD", "0.05")

    assert load_settings().quality.drift_scale_good == 0.05


def test_worker_runs_celery_with_the_turn_queue_and_passes_options_through() -> None:
    argv = worker_argv(("--concurrency", "4", "--pool", "prefork"), "standard")

    assert argv[:4] == [sys.executable, "-m", "celery", "-A"]
    assert argv[4:8] == ["worker.app:app", "worker", "-Q", "editqueue.turns,editqueue.webhooks"]
    assert argv[-4:] == ["--concurrency", "4", "--pool", "prefork"]
    assert "threads" not in argv


def test_the_default_worker_is_the_threads_pool_with_sixteen_slots() -> None:
    argv = worker_argv((), "standard")

    assert argv[-4:] == ["--pool", "threads", "--concurrency", "16"]


def test_the_callers_concurrency_wins_and_short_flags_count() -> None:
    assert "16" not in worker_argv(("-c", "3"), "standard")
    assert "16" not in worker_argv(("--concurrency=3",), "standard")
    assert worker_argv(("-Pprefork",), "standard")[-1] == "-Pprefork"


def test_several_processes_get_their_own_node_names() -> None:
    first = worker_argv(("-n", "studio@box"), "standard", 0, 2)
    second = worker_argv((), "standard", 1, 2)

    assert first[-2:] == ["-n", "studio-0@box"]
    assert second[-2:] == ["-n", "editqueue-1@%h"]


def test_one_process_per_core_for_threads_and_one_for_prefork() -> None:
    assert default_processes(()) == max(1, os.cpu_count() or 1)
    assert default_processes(("--pool", "prefork")) == 1


def test_the_emulator_command_is_mounted() -> None:
    result = CliRunner().invoke(main, ["emulator", "--help"])

    assert result.exit_code == 0
    assert "--port" in result.stdout


def test_status_watch_returns_once_the_session_is_finished(
    services: Services, tmp_path: Path
) -> None:
    sid = submission.submit_session(services, spec_of("a"), base_dir=tmp_path)
    fail_turn(services, sid, 1)

    result = invoke(services, "status", sid, "--watch", "--json")

    assert result.exit_code == 1
    assert json.loads(result.stdout)["state"] == "failed"


def test_status_of_several_sessions_prints_each_and_exits_1_when_one_failed(
    services: Services, tmp_path: Path
) -> None:
    done = submission.submit_session(services, spec_of("a"), base_dir=tmp_path)
    failed = submission.submit_session(services, spec_of("a"), base_dir=tmp_path)
    commit_turn(services, done, 1)
    fail_turn(services, failed, 1)

    result = invoke(services, "status", done, failed, "--json")

    assert result.exit_code == 1
    docs = json.loads(result.stdout)
    assert [(d["session_id"], d["state"]) for d in docs] == [
        (done, "completed"),
        (failed, "failed"),
    ]


def test_status_json_without_a_session_prints_a_summary_row_each(
    services: Services, tmp_path: Path
) -> None:
    sid = submission.submit_session(services, spec_of("a", "b"), base_dir=tmp_path)
    commit_turn(services, sid, 1)

    result = invoke(services, "status", "--json")

    assert result.exit_code == 0
    [row] = json.loads(result.stdout)
    assert (row["session_id"], row["state"], row["turns"], row["turns_succeeded"]) == (
        sid,
        "running",
        2,
        1,
    )
    assert row["cost_usd"] == 0.067 and row["updated_at"]
