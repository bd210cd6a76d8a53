"""The `editqueue` command line.

Exit codes: 0 ok, 1 a turn or session failed, 2 bad input or usage. Input errors print
`error: <message>` on stderr, never a traceback. Settings are read once per invocation, and only
by commands that need them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from producer import cli_batch, sessions
from producer.cli_init import init
from producer.context import CliState
from producer.embedded import run_file
from producer.listing import open_session_ids, summaries
from producer.manifest import check_budget, checked_batch_id, generate_batch_id
from producer.progress import wait_for
from producer.specs import load_specs
from producer.views import session_view, sessions_table
from producer.worker_fleet import flower_argv, run_workers
from shared.broker import LANE_FLEX, LANE_STANDARD
from shared.errors import EditQueueError, InvalidSpec, InvalidState, UnknownSession
from shared.models import (
    HistoryPolicy,
    SessionState,
    SessionStatus,
    Tier,
    TurnSpec,
    validate_stored_id,
)
from shared.services import Services

EXIT_FAILED = 1
EXIT_USAGE = 2
USER_ERRORS = (InvalidSpec, UnknownSession, InvalidState)
WATCH_POLL_S = 1.0


class EditQueueGroup(click.Group):
    """Turns editqueue's errors into `error: ...` and an exit code; mounts `emulator` lazily."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_USAGE)
        except EditQueueError as exc:  # the store, Redis or the API misbehaved
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_FAILED)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), "emulator"])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == "emulator":
            from emulator.cli import emulator_command  # only when asked for

            return emulator_command
        return super().get_command(ctx, cmd_name)


@click.group(cls=EditQueueGroup)
@click.pass_context
def main(ctx: click.Context) -> None:
    """Run multi-turn Gemini image-editing sessions as durable jobs."""
    ctx.ensure_object(CliState)


pass_state = click.make_pass_decorator(CliState, ensure=True)


def _session_arg(sid: str) -> str:
    try:
        return validate_stored_id(sid)
    except ValueError as exc:
        raise InvalidSpec(str(exc)) from None


def _finish(states: list[SessionState]) -> None:
    if any(state is not SessionState.COMPLETED for state in states):
        raise SystemExit(EXIT_FAILED)


@main.command()
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder (default: out/<spec name>).",
)
@pass_state
def run(state: CliState, spec: Path, out: Path | None) -> None:
    """Run SPEC to the end in-process (no servers, no key) and write images and a report."""
    out = out or Path("out") / spec.stem
    result = run_file(state.get_settings(), spec, out)
    for status, page in zip(result.statuses, result.reports, strict=True):
        click.echo(
            f"{status.session_id}: {status.state.value}, {len(status.turns)} turns, "
            f"${status.cost_usd:.3f} -> {page}"
        )
    if result.stalled:
        click.echo("error: no turn made progress for too long; the report shows where", err=True)
    sys.exit(result.exit_code)


@main.command()
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--wait", is_flag=True, help="Wait until every session finished.")
@click.option("--batch-id", default=None, help="The batch id (default: generated for a batch).")
@click.option("--budget-usd", type=float, default=None, help="The batch's budget in USD.")
@click.option(
    "--tier",
    type=click.Choice([t.value for t in Tier]),
    default=None,
    help="standard, flex or batch (half price) for sessions whose spec names no tier.",
)
@pass_state
def submit(
    state: CliState,
    spec: Path,
    wait: bool,
    batch_id: str | None,
    budget_usd: float | None,
    tier: str | None,
) -> None:
    """Validate SPEC and enqueue its session(s); prints one session id per line.

    Several sessions, --batch-id or --budget-usd make a batch: its id is printed on stderr.
    """
    check_budget(budget_usd)
    if batch_id is not None:
        checked_batch_id(batch_id)
    services = state.get_services()
    items = load_specs(
        spec, default_model=services.settings.model, limits=sessions.limits_of(services)
    )
    if batch_id is None and (len(items) > 1 or budget_usd is not None):
        batch_id = generate_batch_id()
    sids = sessions.submit_many(
        services,
        items,
        batch_id=batch_id,
        budget_usd=budget_usd,
        show_progress=len(items) > 1,
        tier=Tier(tier) if tier else None,
        tenant=services.settings.cli_tenant,  # EDITQUEUE_CLI_TENANT; ids stay as written
        scope_ids=False,
    )
    if batch_id is not None:
        click.echo(f"batch {batch_id}: {len(sids)} session(s)", err=True)
    click.echo("\n".join(sids))
    if wait:
        done = wait_for(
            lambda sid: sessions.session_status(services, sid), sids, poll_s=WATCH_POLL_S
        )
        _finish([s.state for s in done.statuses])


def _turn_spec(
    prompt: str,
    image_size: str | None,
    aspect_ratio: str | None,
    images: tuple[Path, ...],
    mask: Path | None = None,
) -> TurnSpec:
    fields = {
        "prompt": prompt,
        "image_size": image_size,
        "aspect_ratio": aspect_ratio,
        "images": [str(p) for p in images],
        "mask": str(mask) if mask else None,
    }
    try:
        return TurnSpec.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "--" + str(first["loc"][0]).replace("_", "-") if first["loc"] else "turn"
        message = first["msg"].removeprefix("Value error, ")
        raise InvalidSpec(f"{name}: {message}") from None


@main.command()
@click.argument("sid")
@click.argument("prompt")
@click.option("--image-size", default=None, help="512, 1K, 2K or 4K for this turn.")
@click.option("--aspect-ratio", default=None, help="e.g. 16:9 for this turn.")
@click.option(
    "--image",
    "images",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A reference image for this turn (repeatable).",
)
@click.option(
    "--mask",
    type=click.Path(path_type=Path),
    default=None,
    help="An image, white where this edit may change pixels (for the quality table only).",
)
@pass_state
def append(
    state: CliState,
    sid: str,
    prompt: str,
    image_size: str | None,
    aspect_ratio: str | None,
    images: tuple[Path, ...],
    mask: Path | None,
) -> None:
    """Add a turn to session SID; prints the new turn's index."""
    turn = _turn_spec(prompt, image_size, aspect_ratio, images, mask)
    index = sessions.append_turn(state.get_services(), _session_arg(sid), turn, Path.cwd())
    click.echo(str(index))


@main.command()
@click.argument("sids", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the status document(s).")
@click.option("--watch", is_flag=True, help="Show progress until the session(s) finish.")
@click.option("--batch", "is_batch", is_flag=True, help="SID is a batch id: show the batch.")
@pass_state
def status(
    state: CliState, sids: tuple[str, ...], as_json: bool, watch: bool, is_batch: bool
) -> None:
    """Progress of session SID (or of several), or a table of every session; exit 1 when one of
    the named sessions failed."""
    services = state.get_services()
    if is_batch:
        if len(sids) != 1:
            raise InvalidSpec("status --batch needs one batch id: `editqueue status --batch BATCH`")
        sys.exit(cli_batch.show_status(services, sids[0], as_json=as_json, watching=watch))
    if not sids:
        if watch:  # only open sessions can change
            wait_for(lambda one: sessions.session_status(services, one), open_session_ids(services))
        rows = list(summaries(services))
        if as_json:
            click.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        else:
            click.echo(sessions_table(rows))
        return
    _show_sessions(services, [_session_arg(sid) for sid in sids], as_json, watch)


def _show_sessions(services: Services, sids: list[str], as_json: bool, watch: bool) -> None:
    def fetch(one: str) -> SessionStatus:
        return sessions.session_status(services, one)

    if watch:
        docs = wait_for(fetch, sids, poll_s=WATCH_POLL_S).statuses
    else:
        docs = [fetch(one) for one in sids]
    if as_json and len(docs) == 1:
        click.echo(docs[0].model_dump_json(indent=2))
    elif as_json:
        click.echo(json.dumps([d.model_dump(mode="json") for d in docs], indent=2))
    else:
        click.echo("\n\n".join(session_view(doc) for doc in docs))
    if any(doc.state is SessionState.FAILED for doc in docs):
        sys.exit(EXIT_FAILED)


@main.command()
@click.argument("sid")
@click.option(
    "--turn",
    "index",
    type=click.IntRange(min=1),
    default=None,
    help="The turn to re-run (default: the failed one).",
)
@click.option("--prompt", default=None, help="Reword the turn before re-running it.")
@pass_state
def retry(state: CliState, sid: str, index: int | None, prompt: str | None) -> None:
    """Re-run a failed turn of SID (optionally reworded); later turns follow."""
    done = sessions.retry_turn(state.get_services(), _session_arg(sid), index, prompt)
    click.echo(f"retrying turn {done} of {sid}")


@main.command()
@click.argument("sid")
@pass_state
def cancel(state: CliState, sid: str) -> None:
    """Stop session SID before its next API call."""
    sessions.cancel(state.get_services(), _session_arg(sid))
    click.echo(f"cancelled {sid}")


def _history_arg(value: str | None) -> HistoryPolicy | None:
    if value is None:
        return None
    try:
        return HistoryPolicy.model_validate(value)
    except ValidationError as exc:
        message = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise InvalidSpec(f"--history: {message}") from None


@main.command()
@click.argument("sid")
@click.option("--at", "at", type=int, required=True, help="The last turn to keep.")
@click.option("--session-id", default=None, help="The new session's id (default: generated).")
@click.option(
    "--history",
    default=None,
    metavar="full|first+last:K",
    help="The fork's history policy (default: SID's); first+last:K re-anchors.",
)
@click.option(
    "--budget-usd", type=float, default=None, help="The fork's budget in USD (default: SID's)."
)
@pass_state
def fork(
    state: CliState,
    sid: str,
    at: int,
    session_id: str | None,
    history: str | None,
    budget_usd: float | None,
) -> None:
    """Branch a new session from turns 1..N of SID; prints its id."""
    policy = _history_arg(history)
    services = state.get_services()
    click.echo(sessions.fork(services, _session_arg(sid), at, session_id, policy, budget_usd))


@main.command()
@click.argument("sid")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--batch", "is_batch", is_flag=True, help="SID is a batch id: export every session.")
@pass_state
def export(state: CliState, sid: str, directory: Path, is_batch: bool) -> None:
    """Write SID's images, evolution strip, report.html and status.json into DIRECTORY.

    With --batch: one such folder per session of batch SID, plus summary.csv and batch.json.
    """
    if is_batch:
        cli_batch.export(state.get_services(), sid, directory)
        return
    click.echo(str(sessions.export(state.get_services(), _session_arg(sid), directory)))


@main.command()
@click.option(
    "--full",
    is_flag=True,
    help="Read every stored session (not just the open ones) and rebuild the session index.",
)
@pass_state
def reconcile(state: CliState, full: bool) -> None:
    """Re-enqueue every turn the store says is due (safe to repeat)."""
    count = sessions.reconcile(state.get_services(), full=full)
    click.echo(f"enqueued {count} turn(s)")


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option(
    "--lane",
    type=click.Choice([LANE_STANDARD, LANE_FLEX]),
    default=LANE_STANDARD,
    show_default=True,
    help="flex: serve Flex-tier turns (long deadline, own visibility timeout).",
)
@click.option(
    "--processes",
    type=click.IntRange(1, 256),
    default=None,
    help="Worker processes on this machine, sharing its blob cache [default: one per core "
    "for the threads pool, else 1].",
)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(lane: str, processes: int | None, celery_args: tuple[str, ...]) -> None:
    """Run worker processes (threads pool, 16 turns each); other options go to `celery worker`."""
    run_workers(celery_args, lane, processes)


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("flower_args", nargs=-1, type=click.UNPROCESSED)
def flower(flower_args: tuple[str, ...]) -> None:
    """Run Flower (the `flower` extra) on the fleet; options go to `celery flower` unchanged."""
    if importlib.util.find_spec("flower") is None:
        raise InvalidSpec("Flower is not installed: pip install 'editqueue[flower]'")
    argv = flower_argv(flower_args)
    os.execv(argv[0], argv)


main.add_command(cli_batch.budget)
main.add_command(init)


@main.command("api")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@pass_state
def api_command(state: CliState, host: str, port: int) -> None:
    """Serve the HTTP API and the session gallery (bearer tokens: EDITQUEUE_API_TOKENS)."""
    from producer.web.server import serve  # FastAPI and uvicorn load only for this command

    serve(state.get_settings(), host, port)


if __name__ == "__main__":
    main()
