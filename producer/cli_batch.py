"""The batch side of the CLI: `status --batch`, `export --batch` and `budget`.

`editqueue status --batch ID [--watch] [--json]` and `editqueue export --batch ID DIR` read the
batch's manifest; `editqueue budget ID --usd Y` rewrites it and resumes turns held for budget.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from producer import batch
from producer.batch_status import BatchStatus
from producer.batch_view import batch_view
from producer.cli_args import pass_state
from producer.context import CliState
from shared.models import SessionState
from shared.services import Services

WATCH_POLL_S = 2.0


def _failed(doc: BatchStatus) -> bool:
    return doc.sessions_by_state.get(SessionState.FAILED.value, 0) > 0


def _show(doc: BatchStatus, as_json: bool) -> None:
    click.echo(doc.model_dump_json(indent=2) if as_json else batch_view(doc))


def watch(services: Services, batch_id: str, *, as_json: bool, poll_s: float) -> BatchStatus:
    """Redraw the batch view until every session is finished; returns the last status."""
    clear = sys.stdout.isatty() and not as_json
    shown = ""
    polling = batch.for_polling(services)
    while True:
        started = time.monotonic()
        doc = batch.status(polling, batch_id)
        view = batch_view(doc)
        if view != shown and not as_json:
            if clear:
                click.clear()
            click.echo(view + ("" if clear else "\n"))
            shown = view
        if doc.finished:
            return doc
        time.sleep(
            max(poll_s, time.monotonic() - started)
        )  # a big batch: poll at most half the time


def show_status(services: Services, batch_id: str, *, as_json: bool, watching: bool) -> int:
    """`status --batch`: print the batch; exit code 1 when a session failed, else 0."""
    if watching:
        doc = watch(services, batch_id, as_json=as_json, poll_s=WATCH_POLL_S)
        if as_json:
            _show(doc, as_json=True)
    else:
        doc = batch.status(services, batch_id)
        _show(doc, as_json)
    return 1 if _failed(doc) else 0


def export(services: Services, batch_id: str, directory: Path) -> None:
    """`export --batch`: a folder per session, `summary.csv` and `batch.json`."""
    doc = batch.export(services, batch_id, directory, show_progress=True)
    click.echo(f"{directory / batch.SUMMARY_CSV}  ({doc.sessions_total} sessions)")


@click.command()
@click.argument("batch_id")
@click.option("--usd", type=float, required=True, help="The batch's new budget in USD.")
@pass_state
def budget(state: CliState, batch_id: str, usd: float) -> None:
    """Set batch BATCH_ID's budget to --usd; turns held back for budget resume."""
    record, resumed = batch.set_budget(state.get_services(), batch_id, usd)
    click.echo(f"batch {record.batch_id}: budget ${usd:.2f}; {resumed} turn(s) enqueued")
