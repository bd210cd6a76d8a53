"""What the CLI's commands share: exit codes, the state decorator, and checked arguments.

Each check turns a bad value into InvalidSpec naming the option, so the command exits 2 with
`error: <message>` and changes nothing.
"""

from __future__ import annotations

from pathlib import Path

import click
from pydantic import ValidationError

from producer.context import CliState
from shared.errors import InvalidSpec
from shared.ids import validate_stored_id
from shared.models import SessionState
from shared.session_spec import HistoryPolicy, TurnSpec

EXIT_FAILED = 1
EXIT_USAGE = 2
WATCH_POLL_S = 1.0

pass_state = click.make_pass_decorator(CliState, ensure=True)


def session_arg(sid: str) -> str:
    """A session id from the command line, checked (InvalidSpec when of the wrong shape)."""
    try:
        return validate_stored_id(sid)
    except ValueError as exc:
        raise InvalidSpec(str(exc)) from None


def finish(states: list[SessionState]) -> None:
    """Exit 1 unless every session completed."""
    if any(state is not SessionState.COMPLETED for state in states):
        raise SystemExit(EXIT_FAILED)


def turn_spec(
    prompt: str,
    image_size: str | None,
    aspect_ratio: str | None,
    images: tuple[Path, ...],
    mask: Path | None = None,
) -> TurnSpec:
    """The turn `append` adds, checked; InvalidSpec names the option that is wrong."""
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


def history_arg(value: str | None) -> HistoryPolicy | None:
    """`--history` as a policy (None when not given); InvalidSpec when misspelt."""
    if value is None:
        return None
    try:
        return HistoryPolicy.model_validate(value)
    except ValidationError as exc:
        message = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise InvalidSpec(f"--history: {message}") from None
