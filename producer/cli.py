"""The `editqueue` command line.

Exit codes: 0 ok, 1 a turn or session failed, 2 bad input or usage. Input errors print
`error: <message>` on stderr, never a traceback. Settings are read once per invocation, and only
by commands that need them. The commands live by group: cli_submit (run, submit, append),
cli_session (status, retry, cancel, fork, export), cli_fleet (reconcile, worker, flower, api),
cli_batch (budget) and cli_init (init).
"""

from __future__ import annotations

from typing import Any

import click

from producer import cli_batch, cli_fleet, cli_session, cli_submit
from producer.cli_args import EXIT_FAILED, EXIT_USAGE
from producer.cli_init import init
from producer.context import CliState
from shared.errors import EditQueueError, InvalidSpec, InvalidState, UnknownSession

USER_ERRORS = (InvalidSpec, UnknownSession, InvalidState)


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


for _command in (
    cli_submit.run,
    cli_submit.submit,
    cli_submit.append,
    cli_session.status,
    cli_session.retry,
    cli_session.cancel,
    cli_session.fork,
    cli_session.export,
    cli_fleet.reconcile,
    cli_fleet.worker,
    cli_fleet.flower,
    cli_fleet.api_command,
    cli_batch.budget,
    init,
):
    main.add_command(_command)


if __name__ == "__main__":
    main()
