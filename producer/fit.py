"""Will a scripted session fit? A pure estimate of every call's tokens and inline request bytes.

Every turn re-sends the history it keeps, so the last call of a long session is the biggest. This
estimate runs before anything is written (the worker's `shared/history.py` does the exact check
per call, with the real stored bytes): replayed model images cost `image_tokens[size]` and
`estimated_image_bytes(...)`, user images 1120 tokens and their file size, text chars / 4; inline
data is base64, so request bytes are image bytes x 4/3. The current call's output image counts
toward the context window too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.catalog import (
    INLINE_REQUEST_LIMIT_BYTES,
    TEXT_CHARS_PER_TOKEN,
    USER_IMAGE_TOKENS,
    ModelProfile,
    estimated_image_bytes,
)
from shared.history import replayed_turns
from shared.models import HistoryPolicy

BASE64_NUMERATOR, BASE64_DENOMINATOR = 4, 3
DEFAULT_IMAGE_SIZE = "1K"  # what the API generates when a call names no imageSize


@dataclass(frozen=True)
class TurnLoad:
    """What one turn puts into the calls that replay it."""

    prompt_chars: int
    user_image_bytes: tuple[int, ...] = ()
    image_size: str | None = None  # the generated image's size (turn override or session default)
    aspect_ratio: str | None = None


@dataclass(frozen=True)
class CallEstimate:
    """The estimated size of the call that generates turn `index`."""

    index: int
    tokens: int
    request_bytes: int


@dataclass(frozen=True)
class SessionFit:
    """Every call's estimate against the model's context window and the inline request limit."""

    calls: tuple[CallEstimate, ...]
    context_tokens: int
    limit_bytes: int = INLINE_REQUEST_LIMIT_BYTES

    def overflows(self, call: CallEstimate) -> bool:
        """True when this call would exceed the context window or the request limit."""
        return call.tokens > self.context_tokens or call.request_bytes > self.limit_bytes

    @property
    def first_overflow(self) -> CallEstimate | None:
        """The first call that does not fit, or None."""
        return next((c for c in self.calls if self.overflows(c)), None)

    @property
    def fits(self) -> bool:
        """True when every call fits."""
        return self.first_overflow is None


def _model_image_tokens(profile: ModelProfile, size: str | None) -> int:
    tokens = profile.image_tokens
    return tokens.get(size or DEFAULT_IMAGE_SIZE, max(tokens.values(), default=USER_IMAGE_TOKENS))


def _user_tokens(load: TurnLoad) -> int:
    return -(-load.prompt_chars // TEXT_CHARS_PER_TOKEN) + USER_IMAGE_TOKENS * len(
        load.user_image_bytes
    )


def _user_bytes(load: TurnLoad) -> int:
    return load.prompt_chars + sum(load.user_image_bytes) * BASE64_NUMERATOR // BASE64_DENOMINATOR


def _model_bytes(load: TurnLoad) -> int:
    raw = estimated_image_bytes(load.aspect_ratio, load.image_size or DEFAULT_IMAGE_SIZE)
    return raw * BASE64_NUMERATOR // BASE64_DENOMINATOR


def estimate_call(
    profile: ModelProfile, loads: Sequence[TurnLoad], policy: HistoryPolicy, index: int
) -> CallEstimate:
    """Tokens (history + this turn + its output image) and inline bytes of the call for `index`."""
    current = loads[index - 1]
    tokens = _user_tokens(current) + _model_image_tokens(profile, current.image_size)
    size = _user_bytes(current)
    for earlier in replayed_turns(policy, index):
        load = loads[earlier - 1]
        tokens += _user_tokens(load) + _model_image_tokens(profile, load.image_size)
        size += _user_bytes(load) + _model_bytes(load)
    return CallEstimate(index=index, tokens=tokens, request_bytes=size)


def estimate_session_fit(
    profile: ModelProfile, loads: Sequence[TurnLoad], policy: HistoryPolicy
) -> SessionFit:
    """The estimate for every call of a scripted session under its history policy."""
    calls = tuple(estimate_call(profile, loads, policy, n) for n in range(1, len(loads) + 1))
    return SessionFit(calls=calls, context_tokens=profile.context_tokens)


def largest_fitting_keep_last(profile: ModelProfile, loads: Sequence[TurnLoad]) -> int | None:
    """The largest `keep_last` for which `{anchor: first, keep_last: k}` fits, or None."""
    for keep_last in range(max(len(loads) - 2, 1), 0, -1):
        policy = HistoryPolicy(anchor="first", keep_last=keep_last)
        if estimate_session_fit(profile, loads, policy).fits:
            return keep_last
    return None
