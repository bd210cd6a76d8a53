"""Batch tooling through the CLI: submit's manifest, status --batch, export --batch, budget."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

from click.testing import CliRunner, Result

from producer.cli import main
from producer.context import CliState
from producer.specs import LoadedSpec
from producer.submission import submit_many
from shared.keys import BATCHES
from shared.services import Services
from shared.session_records import BatchRecord
from shared.turn_records import ParkRecord
from tests.producer.conftest import NOW, RecordingEnqueuer, commit_turn, fail_turn, spec_of


def invoke(services: Services, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), obj=CliState(services=services))


def jsonl(tmp_path: Path, *sessions: list[str]) -> Path:
    lines = [json.dumps({"turns": [{"prompt": p} for p in prompts]}) for prompts in sessions]
    path = tmp_path / "batch.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def batch_of(services: Services, tmp_path: Path, *sessions: list[str]) -> tuple[str, list[str]]:
    """Submit sessions as batch `b1` with a $1 budget; returns the batch id and session ids."""
    items = [LoadedSpec(spec_of(*prompts), tmp_path, f"s{n}") for n, prompts in enumerate(sessions)]
    sids = submit_many(services, items, batch_id="b1", budget_usd=1.0)
    return "b1", sids


def test_a_multi_session_submit_writes_a_manifest_with_every_session_and_the_budget(
    services: Services, tmp_path: Path
) -> None:
    spec = jsonl(tmp_path, ["a"], ["b", "c"], ["d"])

    result = invoke(services, "submit", str(spec), "--budget-usd", "12.5")

    assert result.exit_code == 0, result.output
    sids = result.stdout.split()
    batch_id = result.stderr.split("batch ", 1)[1].split(":", 1)[0]
    assert batch_id.startswith("b_")
    record = services.repo.batch(batch_id)
    assert record.session_ids == sids and record.budget_usd == 12.5
    assert {services.repo.session(sid).batch_id for sid in sids} == {batch_id}


def test_a_single_session_submit_writes_no_manifest(services: Services, tmp_path: Path) -> None:
    result = invoke(services, "submit", str(jsonl(tmp_path, ["a"])))

    assert result.exit_code == 0, result.output
    assert list(services.repo.store.list(BATCHES)) == []
    assert "batch" not in result.stderr


def test_a_negative_budget_on_submit_exits_2_and_writes_nothing(
    services: Services, enqueuer: RecordingEnqueuer, tmp_path: Path
) -> None:
    result = invoke(services, "submit", str(jsonl(tmp_path, ["a"], ["b"])), "--budget-usd", "-1")

    assert result.exit_code == 2
    assert "--budget-usd -1 is negative" in result.stderr
    assert list(services.repo.store.list("")) == [] and enqueuer.calls == []


def test_a_taken_batch_id_exits_2_before_any_session_is_written(
    services: Services, enqueuer: RecordingEnqueuer, tmp_path: Path
) -> None:
    services.repo.create_batch(BatchRecord(batch_id="night", session_ids=[], created_at=NOW))

    result = invoke(services, "submit", str(jsonl(tmp_path, ["a"], ["b"])), "--batch-id", "night")

    assert result.exit_code == 2
    assert "batch id night already exists" in result.stderr
    assert list(services.repo.session_ids()) == [] and enqueuer.calls == []


def test_status_batch_aggregates_states_turns_and_spend(services: Services, tmp_path: Path) -> None:
    batch_id, (done, failed, queued) = batch_of(services, tmp_path, ["a"], ["b", "c"], ["d", "e"])
    commit_turn(services, done, 1)
    commit_turn(services, failed, 1)
    fail_turn(services, failed, 2)

    result = invoke(services, "status", "--batch", batch_id, "--json")

    assert result.exit_code == 1  # a session failed
    doc = json.loads(result.stdout)
    assert doc["sessions_by_state"] == {"completed": 1, "failed": 1, "queued": 1}
    assert (doc["turns_done"], doc["turns_failed"], doc["turns_total"]) == (2, 1, 5)
    assert doc["turns_left"] == 2  # only the queued session's turns will still run
    assert doc["spend_usd"] == 0.134 and doc["budget_usd"] == 1.0
    assert [s["session_id"] for s in doc["sessions"]] == [done, failed, queued]


def test_status_batch_prints_a_readable_summary(services: Services, tmp_path: Path) -> None:
    batch_id, (sid,) = batch_of(services, tmp_path, ["a", "b"])
    commit_turn(services, sid, 1)

    result = invoke(services, "status", "--batch", batch_id)

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "batch b1  1 sessions: running 1"
    assert "turns    1/2 done" in result.stdout
    assert "spend    $0.07 of $1.00 budget (7%)" in result.stdout


def test_status_batch_watch_returns_once_every_session_is_finished(
    services: Services, tmp_path: Path
) -> None:
    batch_id, (sid,) = batch_of(services, tmp_path, ["a"])
    commit_turn(services, sid, 1)

    result = invoke(services, "status", "--batch", batch_id, "--watch", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["finished"] is True


def test_export_batch_writes_a_folder_per_session_and_summary_csv(
    services: Services, tmp_path: Path
) -> None:
    batch_id, (done, failed) = batch_of(services, tmp_path, ["a"], ["b", "c"])
    commit_turn(services, done, 1)
    commit_turn(services, failed, 1)
    fail_turn(services, failed, 2)
    out = tmp_path / "out"

    result = invoke(services, "export", "--batch", batch_id, str(out))

    assert result.exit_code == 0, result.output
    assert (out / done / "report.html").is_file() and (out / failed / "turn_01.jpg").is_file()
    with (out / "summary.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["session_id"], r["state"], r["turns_done"], r["turns_total"]) for r in rows] == [
        (done, "completed", "1", "1"),
        (failed, "failed", "1", "2"),
    ]
    assert [r["cost_usd"] for r in rows] == ["0.0670", "0.0670"]
    assert rows[0]["failures"] == "" and rows[1]["failures"] == "blocked:prompt blocked: SAFETY"
    assert float(rows[0]["wall_time_s"]) >= 0
    assert json.loads((out / "batch.json").read_text())["batch_id"] == batch_id


def test_budget_rewrites_the_manifest_and_resumes_turns_held_for_budget(
    services: Services, enqueuer: RecordingEnqueuer, tmp_path: Path
) -> None:
    batch_id, (sid,) = batch_of(services, tmp_path, ["a", "b"])
    commit_turn(services, sid, 1)
    park = ParkRecord(index=2, reason="budget", due_at=time.time() + 86400, attempt=1)
    services.repo.park(sid, park)
    enqueuer.calls.clear()

    result = invoke(services, "budget", batch_id, "--usd", "5")

    assert result.exit_code == 0, result.output
    assert services.repo.batch(batch_id).budget_usd == 5.0
    assert services.repo.batch(batch_id).session_ids == [sid]
    assert enqueuer.calls == [(sid, 2)]
    assert result.stdout == "batch b1: budget $5.00; 1 turn(s) enqueued\n"


def test_budget_refuses_a_negative_amount_with_exit_2(services: Services, tmp_path: Path) -> None:
    batch_id, _ = batch_of(services, tmp_path, ["a"])

    result = invoke(services, "budget", batch_id, "--usd", "-3")

    assert result.exit_code == 2
    assert "negative" in result.stderr
    assert services.repo.batch(batch_id).budget_usd == 1.0


def test_budget_of_an_unknown_batch_exits_2(services: Services) -> None:
    result = invoke(services, "budget", "nope", "--usd", "3")

    assert result.exit_code == 2
    assert result.stderr == "error: batch nope does not exist\n"


def test_batch_commands_refuse_ids_that_could_be_paths(services: Services) -> None:
    result = invoke(services, "status", "--batch", "../etc")

    assert result.exit_code == 2
    assert "batch id '../etc' must be 1-64 characters" in result.stderr
