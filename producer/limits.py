"""What one session may ask for: turns, prompt length, metadata, model id and reference images.

Each limit has an `EDITQUEUE_` setting, and every message names both the limit and the setting.
The checks are linear in the spec's size and run before anything heavier (the fit estimate,
image decoding) or anything is written. Text that cannot be stored as UTF-8 (a lone surrogate
such as "\\ud800", which JSON can spell) is refused here too, so a write never fails halfway.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from shared.config import (
    DEFAULT_MAX_IMAGE_BYTES,
    DEFAULT_MAX_IMAGE_PIXELS,
    DEFAULT_MAX_METADATA_BYTES,
    DEFAULT_MAX_MODEL_CHARS,
    DEFAULT_MAX_PROMPT_CHARS,
    DEFAULT_MAX_REFERENCE_IMAGES,
    DEFAULT_MAX_TURNS,
    Settings,
)
from shared.session_spec import SessionSpec, TurnSpec

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Limits:
    """The limits in force (the settings' values)."""

    max_turns: int = DEFAULT_MAX_TURNS
    max_prompt_chars: int = DEFAULT_MAX_PROMPT_CHARS
    max_metadata_bytes: int = DEFAULT_MAX_METADATA_BYTES
    max_model_chars: int = DEFAULT_MAX_MODEL_CHARS
    max_reference_images: int = DEFAULT_MAX_REFERENCE_IMAGES
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        """The limits of `EDITQUEUE_MAX_*`."""
        return cls(
            max_turns=settings.max_turns,
            max_prompt_chars=settings.max_prompt_chars,
            max_metadata_bytes=settings.max_metadata_bytes,
            max_model_chars=settings.max_model_chars,
            max_reference_images=settings.max_reference_images,
            max_image_bytes=settings.max_image_bytes,
            max_image_pixels=settings.max_image_pixels,
        )


DEFAULT_LIMITS = Limits()


def _over(what: str, size: str, limit: str, setting: str, todo: str) -> str:
    return f"{what} is {size}, over the limit of {limit} (EDITQUEUE_{setting}); {todo}"


def unencodable(text: str) -> str | None:
    """Why `text` cannot be stored as UTF-8 (a lone surrogate), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (
            f"holds an unpaired surrogate ({text[exc.start]!r} at character {exc.start}), "
            "which is not text; remove it"
        )
    return None


def _strings(value: Any, loc: Loc) -> Iterator[tuple[Loc, str]]:
    if isinstance(value, str):
        yield loc, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key, (*loc, str(key)))
            yield from _strings(item, (*loc, str(key)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, (*loc, i))


def text_problems(value: Any, loc: Loc = ()) -> list[tuple[Loc, str]]:
    """Every string in `value` (a parsed spec or turn) that cannot be stored, by field."""
    found = []
    for where, text in _strings(value, loc):
        reason = unencodable(text)
        if reason is not None:
            found.append((where, reason))
    return found


def prompt_problem(prompt: str, limits: Limits) -> str | None:
    """Why a prompt is refused (too long, not storable), or None."""
    if len(prompt) > limits.max_prompt_chars:
        return _over(
            "the prompt",
            f"{len(prompt):,} characters",
            f"{limits.max_prompt_chars:,}",
            "MAX_PROMPT_CHARS",
            "shorten it",
        )
    return unencodable(prompt)


def turn_limit_problems(turn: TurnSpec, limits: Limits, loc: Loc = ()) -> list[tuple[Loc, str]]:
    """A turn's prompt and reference-image count against the limits."""
    found: list[tuple[Loc, str]] = []
    reason = prompt_problem(turn.prompt, limits)
    if reason is not None:
        found.append(((*loc, "prompt"), reason))
    if len(turn.images) > limits.max_reference_images:
        message = (
            f"{len(turn.images)} reference images are over the limit of "
            f"{limits.max_reference_images} per turn (EDITQUEUE_MAX_REFERENCE_IMAGES); drop some"
        )
        found.append(((*loc, "images"), message))
    return found


def turn_count_problem(count: int, limits: Limits) -> tuple[Loc, str] | None:
    """The turn limit, checked before a spec is parsed any further (it is the costly part)."""
    if count <= limits.max_turns:
        return None
    message = _over(
        "the session",
        f"{count:,} turns",
        f"{limits.max_turns:,}",
        "MAX_TURNS",
        "split it into several sessions",
    )
    return ("turns",), message


def session_limit_problems(spec: SessionSpec, limits: Limits) -> list[tuple[Loc, str]]:
    """Turn count, model id length, metadata size, then each turn (empty when within limits)."""
    too_many = turn_count_problem(len(spec.turns), limits)
    if too_many is not None:
        return [too_many]
    found: list[tuple[Loc, str]] = []
    if spec.model is not None and len(spec.model) > limits.max_model_chars:
        size = f"{len(spec.model):,} characters"
        todo = "use a model id such as gemini-3.1-flash-image"
        cap = str(limits.max_model_chars)
        found.append((("model",), _over("the model id", size, cap, "MAX_MODEL_CHARS", todo)))
    metadata_bytes = len(json.dumps(spec.metadata).encode())
    if metadata_bytes > limits.max_metadata_bytes:
        size = f"{metadata_bytes:,} bytes as JSON"
        cap = f"{limits.max_metadata_bytes:,}"
        todo = "keep large data elsewhere and store a reference"
        found.append((("metadata",), _over("metadata", size, cap, "MAX_METADATA_BYTES", todo)))
    for i, turn in enumerate(spec.turns):
        found += turn_limit_problems(turn, limits, ("turns", i))
    return found
