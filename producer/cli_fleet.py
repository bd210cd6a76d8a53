"""The CLI's operator commands: `reconcile` the store, run `worker` processes, `flower`, `api`."""

from __future__ import annotations

import importlib.util
import os

import click

from producer import sessions
from producer.cli_args import pass_state
from producer.context import CliState
from producer.worker_fleet import flower_argv, run_workers
from shared.broker import LANE_FLEX, LANE_STANDARD
from shared.errors import InvalidSpec


@click.command()
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


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
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


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("flower_args", nargs=-1, type=click.UNPROCESSED)
def flower(flower_args: tuple[str, ...]) -> None:
    """Run Flower (the `flower` extra) on the fleet; options go to `celery flower` unchanged."""
    if importlib.util.find_spec("flower") is None:
        raise InvalidSpec("Flower is not installed: pip install 'editqueue[flower]'")
    argv = flower_argv(flower_args)
    os.execv(argv[0], argv)


@click.command("api")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@pass_state
def api_command(state: CliState, host: str, port: int) -> None:
    """Serve the HTTP API and the session gallery (bearer tokens: EDITQUEUE_API_TOKENS)."""
    from producer.web.server import serve  # FastAPI and uvicorn load only for this command

    serve(state.get_settings(), host, port)
