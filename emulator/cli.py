"""`editqueue emulator`: serve the Gemini API emulator in the foreground."""

from __future__ import annotations

import click

from emulator.config import (
    DEFAULT_BATCH_TURNAROUND_S,
    DEFAULT_DRIP_INTERVAL_S,
    DEFAULT_HANG_S,
    DEFAULT_HOST,
    DEFAULT_INTERACTION_TTL_S,
    DEFAULT_JPEG_QUALITY,
    DEFAULT_RETRY_DELAY_S,
    FAULT_NAMES,
    EmulatorConfig,
    parse_fault_rate,
)
from emulator.server import serve_forever

DEFAULT_CLI_PORT = 8765
MEGABYTE = 1024 * 1024


def _fault_rates(values: tuple[str, ...]) -> dict[str, float]:
    rates: dict[str, float] = {}
    for value in values:
        try:
            name, rate = parse_fault_rate(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--fault-rate") from exc
        rates[name] = rate
    return rates


def _announce(url: str) -> None:
    # Integration tests start `python -m emulator` and read this line to learn the port.
    click.echo(f"editqueue emulator listening on {url}")


@click.command("emulator")
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Interface to bind.")
@click.option("--port", default=DEFAULT_CLI_PORT, show_default=True, help="0 picks a free port.")
@click.option("--api-key", default=None, help="Accept only this key (default: any non-empty).")
@click.option(
    "--strict/--no-strict",
    default=True,
    show_default=True,
    help="Reject replayed model parts whose thought signature is missing or forged.",
)
@click.option("--seed", type=int, default=None, help="Seeds faults, jitter and the signing secret.")
@click.option("--latency-s", default=0.0, show_default=True)
@click.option("--latency-jitter-s", default=0.0, show_default=True)
@click.option(
    "--fault-rate",
    "fault_rate",
    multiple=True,
    metavar="NAME=RATE",
    help=f"Per-call fault probability, repeatable. Names: {', '.join(FAULT_NAMES)}.",
)
@click.option(
    "--retry-delay-s",
    default=DEFAULT_RETRY_DELAY_S,
    show_default=True,
    help="retryDelay advertised by injected 429s.",
)
@click.option(
    "--hang-s",
    default=DEFAULT_HANG_S,
    show_default=True,
    help="How long a hang lasts; also caps a drip.",
)
@click.option("--drip-interval-s", default=DEFAULT_DRIP_INTERVAL_S, show_default=True)
@click.option(
    "--mime-lie-rate",
    default=0.0,
    show_default=True,
    help="Share of JPEG replies declared as image/png.",
)
@click.option(
    "--image-format", type=click.Choice(["jpeg", "png"]), default="jpeg", show_default=True
)
@click.option("--jpeg-quality", default=DEFAULT_JPEG_QUALITY, show_default=True)
@click.option("--max-request-mb", default=100, show_default=True, help="Request payload limit.")
@click.option(
    "--batch-turnaround-s",
    default=DEFAULT_BATCH_TURNAROUND_S,
    show_default=True,
    help="A batch job ends this long after it is created.",
)
@click.option(
    "--batch-expire-jobs",
    default=0,
    show_default=True,
    help="The first N batch jobs end EXPIRED instead of SUCCEEDED (the expiry fault).",
)
@click.option("--flex-latency-s", default=0.0, show_default=True, help="Extra latency of flex.")
@click.option(
    "--flex-shed-rate", default=0.0, show_default=True, help="Share of flex calls shed (503)."
)
@click.option(
    "--interaction-ttl-s",
    default=DEFAULT_INTERACTION_TTL_S,
    show_default=True,
    help="How long a stored interaction lives (Interactions API); short to test expiry.",
)
def emulator_command(
    host: str,
    port: int,
    api_key: str | None,
    strict: bool,
    seed: int | None,
    latency_s: float,
    latency_jitter_s: float,
    fault_rate: tuple[str, ...],
    retry_delay_s: float,
    hang_s: float,
    drip_interval_s: float,
    mime_lie_rate: float,
    image_format: str,
    jpeg_quality: int,
    max_request_mb: int,
    batch_turnaround_s: float,
    batch_expire_jobs: int,
    flex_latency_s: float,
    flex_shed_rate: float,
    interaction_ttl_s: float,
) -> None:
    """Run a local stand-in for the Gemini image API (generateContent)."""
    try:
        config = EmulatorConfig(
            host=host,
            port=port,
            api_key=api_key,
            strict=strict,
            seed=seed,
            latency_s=latency_s,
            latency_jitter_s=latency_jitter_s,
            fault_rates=_fault_rates(fault_rate),
            retry_delay_s=retry_delay_s,
            hang_s=hang_s,
            drip_interval_s=drip_interval_s,
            mime_lie_rate=mime_lie_rate,
            image_format="png" if image_format == "png" else "jpeg",
            jpeg_quality=jpeg_quality,
            max_request_bytes=max_request_mb * MEGABYTE,
            batch_turnaround_s=batch_turnaround_s,
            batch_expire_jobs=batch_expire_jobs,
            flex_latency_s=flex_latency_s,
            flex_shed_rate=flex_shed_rate,
            interaction_ttl_s=interaction_ttl_s,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    serve_forever(config, on_ready=_announce)
