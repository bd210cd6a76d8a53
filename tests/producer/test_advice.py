"""Every message that recommends a command: the command, run as written, is accepted.

Each test provokes one refusal, takes the commands it quotes (`editqueue ...` in backticks), fills
in the two placeholders (NEW_SID: the id the fork just printed; PROMPT: the user's words), runs
them through the CLI over the same services, and checks they succeed and lead somewhere.
"""

from __future__ import annotations

import random
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from producer import submission
from producer.cli import main
from producer.context import CliState
from shared.catalog import INLINE_REQUEST_LIMIT_BYTES, profile_for
from shared.errors import BrokerUnavailable, HistoryTooLarge
from shared.services import Services
from shared.session_records import BatchRecord
from tests.producer.conftest import RecordingEnqueuer, commit_turn, fail_turn, spec_of
from tests.producer.test_bad_input_cli import _largest_fitting
from tests.worker.conftest import NOW, answer, jpeg, make_world
from worker.turn import Outcome, TurnRunner

COMMAND_RE = re.compile(r"`editqueue ([^`]+)`")


def commands_in(message: str) -> list[list[str]]:
    """The editqueue commands a message quotes, as argument lists."""
    return [shlex.split(found) for found in COMMAND_RE.findall(message)]


def cli(services: Services, args: list[str]) -> Result:
    return CliRunner().invoke(main, args, obj=CliState(services=services))


def refusal(services: Services, args: list[str]) -> str:
    result = cli(services, args)
    assert result.exit_code == 2, (args, result.output)
    return result.stderr


def follow(services: Services, message: str, prompt: str = "add a reading lamp") -> list[str]:
    """Run every command the message recommends, in order; each must exit 0. Returns outputs."""
    commands = commands_in(message)
    assert commands, f"no command in {message!r}"
    outputs: list[str] = []
    new_sid = ""
    for argv in commands:
        args = [new_sid if a == "NEW_SID" else prompt if a == "PROMPT" else a for a in argv]
        result = cli(services, args)
        assert result.exit_code == 0, (args, result.output)
        if args[0] == "fork":
            new_sid = result.stdout.strip()
        outputs.append(result.stdout)
    return outputs


def committed(services: Services, *prompts: str, base: Path, **fields: object) -> str:
    sid = submission.submit_session(services, spec_of(*prompts, **fields), base_dir=base)
    for index in range(1, len(prompts) + 1):
        commit_turn(services, sid, index)
    return sid


def test_retry_of_a_succeeded_turn_recommends_a_fork_and_an_append_that_work(
    services: Services, enqueuer: RecordingEnqueuer, tmp_path: Path
) -> None:
    sid = committed(services, "a room", "paint it", "add a shelf", base=tmp_path)

    message = refusal(services, ["retry", sid, "--turn", "2"])

    assert f"`editqueue fork {sid} --at 1`" in message
    fork_out, append_out = follow(services, message, prompt="paint it blue")
    new_sid = fork_out.strip()
    assert append_out.strip() == "2" and enqueuer.calls[-1] == (new_sid, 2)


def test_retry_of_a_succeeded_first_turn_no_longer_recommends_fork_at_0(
    services: Services, tmp_path: Path
) -> None:
    sid = committed(services, "a room", base=tmp_path)

    message = refusal(services, ["retry", sid, "--turn", "1"])

    assert "--at 0" not in message and "submit the spec again" in message
    spec = tmp_path / "again.yaml"
    spec.write_text("turns:\n  - prompt: a room\n")
    assert cli(services, ["submit", str(spec)]).exit_code == 0


def test_an_append_past_the_inline_limit_recommends_a_reanchoring_fork_that_takes_the_turn(
    services: Services, enqueuer: RecordingEnqueuer, tmp_path: Path
) -> None:
    prompts = [f"edit {n}" for n in range(_largest_fitting())]
    sid = committed(services, *prompts, base=tmp_path, image_size="4K", aspect_ratio="16:9")

    message = refusal(services, ["append", sid, "one more"])

    assert "would send" in message and "--history first+last:" in message
    fork_out, append_out = follow(services, message, prompt="one more")
    new_sid = fork_out.strip()
    assert services.repo.session(new_sid).history.keep_last is not None
    assert int(append_out) == len(prompts) + 1
    assert enqueuer.calls[-1] == (new_sid, len(prompts) + 1)


def test_an_append_past_the_limit_with_turns_still_running_says_to_wait_then_fork(
    services: Services, tmp_path: Path
) -> None:
    prompts = [f"edit {n}" for n in range(_largest_fitting())]
    spec = spec_of(*prompts, image_size="4K", aspect_ratio="16:9")
    sid = submission.submit_session(services, spec, base_dir=tmp_path)

    message = refusal(services, ["append", sid, "one more"])

    assert f"once turn {len(prompts)} is committed (`editqueue status {sid}`)" in message
    status, fork = commands_in(message)[:2]
    assert cli(services, status).exit_code == 0
    assert cli(services, fork).exit_code == 2  # not yet: that is what the message says
    for index in range(1, len(prompts) + 1):
        commit_turn(services, sid, index)
    follow(services, message.split("), ", 1)[1], prompt="one more")


@pytest.mark.parametrize("command", ["append", "retry"])
def test_a_cancelled_session_recommends_a_fork_of_its_committed_turns(
    services: Services, tmp_path: Path, command: str
) -> None:
    sid = submission.submit_session(services, spec_of("a room", "paint it"), base_dir=tmp_path)
    commit_turn(services, sid, 1)
    cli(services, ["cancel", sid])
    args = ["append", sid, "more"] if command == "append" else ["retry", sid]

    message = refusal(services, args)

    assert f"session {sid} is cancelled" in message
    fork_out, append_out = follow(services, message)
    assert append_out.strip() == "2"
    assert not services.repo.is_cancelled(fork_out.strip())


def test_retry_while_a_turn_runs_recommends_status_or_cancel(
    services: Services, tmp_path: Path
) -> None:
    sid = submission.submit_session(services, spec_of("a room"), base_dir=tmp_path)

    message = refusal(services, ["retry", sid])

    assert "no failed turn to retry; turn 1 is queued" in message
    follow(services, message)
    assert services.repo.is_cancelled(sid)


def test_cancelling_a_completed_session_is_refused_and_recommends_append(
    services: Services, enqueuer: RecordingEnqueuer, tmp_path: Path
) -> None:
    sid = committed(services, "a room", base=tmp_path)

    message = refusal(services, ["cancel", sid])

    assert f"session {sid} is completed: nothing is left to cancel" in message
    assert not services.repo.is_cancelled(sid)
    follow(services, message)
    assert enqueuer.calls[-1] == (sid, 2)


def test_cancelling_a_failed_session_is_refused_and_recommends_retry(
    services: Services, enqueuer: RecordingEnqueuer, tmp_path: Path
) -> None:
    sid = submission.submit_session(services, spec_of("a room", "paint it"), base_dir=tmp_path)
    commit_turn(services, sid, 1)
    fail_turn(services, sid, 2)

    message = refusal(services, ["cancel", sid])

    assert f"session {sid} is failed (turn 2): nothing is running to cancel" in message
    follow(services, message)
    assert enqueuer.calls[-1] == (sid, 2)


def test_forking_at_an_uncommitted_turn_recommends_status(
    services: Services, tmp_path: Path
) -> None:
    sid = submission.submit_session(services, spec_of("a room", "paint it"), base_dir=tmp_path)
    commit_turn(services, sid, 1)

    message = refusal(services, ["fork", sid, "--at", "2"])

    assert "not committed yet; pick 1..1 or wait for it" in message
    follow(services, message)


def test_an_unknown_session_recommends_the_listing(services: Services) -> None:
    message = refusal(services, ["status", "nope"])
    follow(services, message)


def test_status_batch_without_an_id_shows_the_form_that_works(
    services: Services, tmp_path: Path
) -> None:
    spec = tmp_path / "two.jsonl"
    spec.write_text('{"turns": [{"prompt": "a"}]}\n{"turns": [{"prompt": "b"}]}\n')
    submitted = cli(services, ["submit", str(spec), "--batch-id", "b1"])
    assert submitted.exit_code == 0

    message = refusal(services, ["status", "--batch"])

    [argv] = commands_in(message)
    assert cli(services, [a.replace("BATCH", "b1") for a in argv]).exit_code == 0


class FlakyBroker(RecordingEnqueuer):
    """Refuses the first send, as a broker that is down would."""

    def enqueue_turn(
        self, sid: str, index: int, *, attempt: int = 1, countdown_s: float = 0
    ) -> None:
        if not getattr(self, "refused", False):
            self.refused = True
            raise BrokerUnavailable("redis: connection refused")
        super().enqueue_turn(sid, index, attempt=attempt, countdown_s=countdown_s)


def test_a_turn_stored_but_not_queued_recommends_reconcile(tmp_path: Path) -> None:
    from tests.producer.conftest import make_services

    broker = FlakyBroker()
    services = make_services(tmp_path, broker)
    spec = tmp_path / "one.yaml"
    spec.write_text("turns:\n  - prompt: a room\n")

    failed = cli(services, ["submit", str(spec)])

    assert failed.exit_code == 1 and "is stored but not queued" in failed.stderr
    [sid] = list(services.repo.session_ids())
    assert follow(services, failed.stderr) == ["enqueued 1 turn(s)\n"]
    assert broker.calls == [(sid, 1)]


def test_a_history_too_large_for_the_worker_recommends_a_fork_that_takes_the_turn(
    services: Services, enqueuer: RecordingEnqueuer, tmp_path: Path
) -> None:
    from shared.history import check_fits

    sid = committed(services, "a room", "paint it", "add a shelf", base=tmp_path)
    profile = profile_for(services.repo.session(sid).model)
    with pytest.raises(HistoryTooLarge) as caught:
        check_fits(profile, 10, INLINE_REQUEST_LIMIT_BYTES + 1, 4, sid)

    fork_out, append_out = follow(services, str(caught.value), prompt="add a lamp")

    assert services.repo.session(fork_out.strip()).history.keep_last == 2
    assert append_out.strip() == "4" and enqueuer.calls[-1] == (fork_out.strip(), 4)


def _park_message(world, sid: str, index: int) -> str:  # type: ignore[no-untyped-def]
    runner = TurnRunner(world.services, owner="o", rng=random.Random(1))
    for n in range(1, index):
        assert runner.run(sid, n, 1) is Outcome.COMMITTED
    assert runner.run(sid, index, 1) is Outcome.PARKED
    park = world.repo.parked(sid, index)
    assert park is not None and park.reason == "budget"
    message: str = park.error.message  # type: ignore[union-attr]
    return message


def test_a_batch_budget_refusal_recommends_a_budget_that_lets_the_turn_through(
    tmp_path: Path,
) -> None:
    world = make_world(tmp_path, [answer(jpeg((i, 0, 0))) for i in range(3)])
    sid = world.session(["a", "b"])
    record = world.repo.session(sid).model_copy(update={"batch_id": "b1"})
    world.store.put(f"sessions/{sid}/session.json", record.model_dump_json().encode())
    world.repo.create_batch(
        BatchRecord(batch_id="b1", session_ids=[sid], budget_usd=0.15, created_at=NOW)
    )

    message = _park_message(world, sid, 2)

    assert "`editqueue budget b1 --usd " in message
    follow(world.services, message)
    runner = TurnRunner(world.services, owner="o2", rng=random.Random(2))
    assert runner.run(sid, 2, 2) is Outcome.COMMITTED


def test_a_session_budget_refusal_recommends_a_fork_with_a_budget_that_takes_the_turn(
    tmp_path: Path,
) -> None:
    world = make_world(tmp_path, [answer(jpeg((i, 0, 0))) for i in range(3)])
    sid = world.session(["a", "b"])
    record = world.repo.session(sid).model_copy(update={"budget_usd": 0.15})
    world.store.put(f"sessions/{sid}/session.json", record.model_dump_json().encode())

    message = _park_message(world, sid, 2)

    assert "budget_usd is fixed" in message
    fork_out, append_out = follow(world.services, message, prompt="b")
    runner = TurnRunner(world.services, owner="o2", rng=random.Random(2))
    assert runner.run(fork_out.strip(), int(append_out), 1) is Outcome.COMMITTED


def test_no_refusal_recommends_a_command_the_cli_does_not_have() -> None:
    names = set(main.list_commands(click_context()))
    for source in ("shared", "producer", "worker"):
        for path in (Path(__file__).resolve().parents[2] / source).rglob("*.py"):
            for argv in commands_in(path.read_text()):
                if re.fullmatch(r"[a-z]+", argv[0]):  # not a pattern that finds commands
                    assert argv[0] in names, (path, argv)


def click_context():  # type: ignore[no-untyped-def]
    import click

    return click.Context(main)


def test_a_spec_that_would_outgrow_the_limits_names_a_history_that_is_then_accepted(
    services: Services, tmp_path: Path
) -> None:
    prompts = "".join(f"  - prompt: edit {n}\n" for n in range(_largest_fitting() + 1))
    spec = tmp_path / "long.yaml"
    spec.write_text(f"image_size: 4K\naspect_ratio: '16:9'\nturns:\n{prompts}")

    message = refusal(services, ["submit", str(spec)])

    found = re.search(r"set (history: \{anchor: first, keep_last: \d+\})", message)
    assert found, message
    spec.write_text(f"{found.group(1)}\n{spec.read_text()}")
    assert cli(services, ["submit", str(spec)]).exit_code == 0
