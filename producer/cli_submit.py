"""The CLI's commands that start work: `run` a spec in-process, `submit` it, `append` a turn."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from producer import sessions, submission
from producer.cli_args import WATCH_POLL_S, finish, pass_state, session_arg, turn_spec
from producer.context import CliState
from producer.embedded import run_file
from producer.manifest import check_budget, checked_batch_id, generate_batch_id
from producer.progress import wait_for
from producer.specs import load_specs
from shared.models import Tier


@click.command()
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


@click.command()
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
        spec, default_model=services.settings.model, limits=submission.limits_of(services)
    )
    if batch_id is None and (len(items) > 1 or budget_usd is not None):
        batch_id = generate_batch_id()
    sids = submission.submit_many(
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
        finish([s.state for s in done.statuses])


@click.command()
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
    turn = turn_spec(prompt, image_size, aspect_ratio, images, mask)
    index = submission.append_turn(state.get_services(), session_arg(sid), turn, Path.cwd())
    click.echo(str(index))
