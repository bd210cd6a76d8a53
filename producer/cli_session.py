"""The CLI's commands on existing sessions: `status`, `retry`, `cancel`, `fork` and `export`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from producer import cli_batch, sessions
from producer.cli_args import (
    EXIT_FAILED,
    WATCH_POLL_S,
    history_arg,
    pass_state,
    session_arg,
)
from producer.context import CliState
from producer.listing import open_session_ids, summaries
from producer.progress import wait_for
from producer.views import session_view, sessions_table
from shared.errors import InvalidSpec
from shared.models import SessionState
from shared.services import Services
from shared.status_document import SessionStatus


@click.command()
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
    _show_sessions(services, [session_arg(sid) for sid in sids], as_json, watch)


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


@click.command()
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
    done = sessions.retry_turn(state.get_services(), session_arg(sid), index, prompt)
    click.echo(f"retrying turn {done} of {sid}")


@click.command()
@click.argument("sid")
@pass_state
def cancel(state: CliState, sid: str) -> None:
    """Stop session SID before its next API call."""
    sessions.cancel(state.get_services(), session_arg(sid))
    click.echo(f"cancelled {sid}")


@click.command()
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
    policy = history_arg(history)
    services = state.get_services()
    click.echo(sessions.fork(services, session_arg(sid), at, session_id, policy, budget_usd))


@click.command()
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
    click.echo(str(sessions.export(state.get_services(), session_arg(sid), directory)))
