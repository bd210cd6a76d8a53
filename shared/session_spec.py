"""A session as a client writes it (YAML, JSON or the HTTP API): its turns and history policy."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from shared.ids import validate_session_id
from shared.models import Strict, Tier, Transport

IMAGE_SIZES = ("512", "1K", "2K", "4K")
# `first+last:K`, the command-line spelling of {anchor: first, keep_last: K}
FIRST_LAST_RE = re.compile(r"first\+last:(\d+)")
HISTORY_FORMS = "'full', 'first+last:K' or {anchor: first, keep_last: K}"


def _check_image_size(value: str | None) -> str | None:
    if value is not None and value not in IMAGE_SIZES:
        raise ValueError(f"image_size {value!r} must be one of {', '.join(IMAGE_SIZES)}")
    return value


def _check_prompt(value: str) -> str:
    if not value.strip():
        raise ValueError("prompt is empty; write what this turn should change")
    return value


class HistoryPolicy(Strict):
    """Which earlier turns are replayed: all of them, or the first plus the last `keep_last`."""

    anchor: Literal["first"] | None = None
    keep_last: int | None = Field(default=None, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _from_word(cls, value: Any) -> Any:
        if value == "full" or value is None:
            return {}
        if isinstance(value, str):
            match = FIRST_LAST_RE.fullmatch(value)
            if match is None:
                raise ValueError(f"history {value!r} must be {HISTORY_FORMS}")
            return {"anchor": "first", "keep_last": int(match.group(1))}
        return value

    @model_validator(mode="after")
    def _complete(self) -> HistoryPolicy:
        if (self.anchor is None) != (self.keep_last is None):
            raise ValueError("a re-anchoring history policy needs both anchor: first and keep_last")
        return self

    @property
    def is_full(self) -> bool:
        """True when every earlier turn is replayed."""
        return self.anchor is None

    @property
    def spelling(self) -> str:
        """How the command line writes this policy: `full` or `first+last:K`."""
        return "full" if self.keep_last is None else f"first+last:{self.keep_last}"


class TurnSpec(Strict):
    """One user turn as written in a session spec or sent by `append`."""

    prompt: str
    images: list[str] = Field(default_factory=list)
    mask: str | None = None  # an image: white where this turn's edit may change pixels
    image_size: str | None = None
    aspect_ratio: str | None = None

    _prompt = field_validator("prompt")(_check_prompt)
    _size = field_validator("image_size")(_check_image_size)


class SessionSpec(Strict):
    """A session as a client writes it (YAML or JSON)."""

    session_id: str | None = None
    model: str | None = None
    aspect_ratio: str | None = None
    image_size: str | None = None
    history: HistoryPolicy = Field(default_factory=HistoryPolicy)
    metadata: dict[str, str] = Field(default_factory=dict)
    budget_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    tier: Tier | None = None  # standard when unset (or `submit --tier`)
    transport: Transport | None = None  # EDITQUEUE_DEFAULT_TRANSPORT when unset (replay)
    turns: list[TurnSpec] = Field(min_length=1)

    _size = field_validator("image_size")(_check_image_size)

    @field_validator("session_id")
    @classmethod
    def _sid(cls, value: str | None) -> str | None:
        return None if value is None else validate_session_id(value)
