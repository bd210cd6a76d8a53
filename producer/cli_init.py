"""`editqueue init`: create the bucket and check Redis, the store and the key, before any worker.

The same checks a worker runs at start (`shared/preflight.py`), printed one line each, with the
bucket created when it is missing. Exit 0 when everything a worker needs is there, 2 otherwise.
"""

from __future__ import annotations

import sys

import click

from producer.cli_args import pass_state
from producer.context import CliState
from shared.preflight import run_checks

EXIT_NOT_READY = 2
NEXT_STEP = "ready: start workers with `editqueue worker`"


@click.command("init")
@pass_state
def init(state: CliState) -> None:
    """Create the S3 bucket if missing; check Redis, the store and GEMINI_API_KEY."""
    findings, _ = run_checks(state.get_settings(), create_bucket=True)
    for finding in findings:
        click.echo(finding.line())
    if any(not finding.ok for finding in findings):
        click.echo("error: fix the settings marked FAIL, then run `editqueue init` again", err=True)
        sys.exit(EXIT_NOT_READY)
    click.echo(NEXT_STEP)
