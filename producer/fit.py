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
from shared.session_spec import HistoryPolicy

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


def _replayed_cost(profile: ModelProfile, load: TurnLoad) -> tuple[int, int]:
    """(tokens, bytes) a turn adds to every later call that replays it."""
    return (
        _user_tokens(load) + _model_image_tokens(profile, load.image_size),
        _user_bytes(load) + _model_bytes(load),
    )


def _own_cost(profile: ModelProfile, load: TurnLoad) -> tuple[int, int]:
    """(tokens, bytes) of a call's own turn: its user parts and the image it will return."""
    return _user_tokens(load) + _model_image_tokens(profile, load.image_size), _user_bytes(load)


def estimate_call(
    profile: ModelProfile, loads: Sequence[TurnLoad], policy: HistoryPolicy, index: int
) -> CallEstimate:
    """Tokens (history + this turn + its output image) and inline bytes of the call for `index`."""
    tokens, size = _own_cost(profile, loads[index - 1])
    for earlier in replayed_turns(policy, index):
        more_tokens, more_bytes = _replayed_cost(profile, loads[earlier - 1])
        tokens, size = tokens + more_tokens, size + more_bytes
    return CallEstimate(index=index, tokens=tokens, request_bytes=size)


class _Prefix:
    """Prefix sums of the replayed costs, so each call's estimate takes O(1): linear in all."""

    def __init__(self, profile: ModelProfile, loads: Sequence[TurnLoad]) -> None:
        self.tokens, self.bytes = [0], [0]
        self.own: list[tuple[int, int]] = []
        costs: dict[TurnLoad, tuple[tuple[int, int], tuple[int, int]]] = {}  # repeated turns
        for load in loads:
            if load not in costs:
                costs[load] = (_replayed_cost(profile, load), _own_cost(profile, load))
            (tokens, size), own = costs[load]
            self.tokens.append(self.tokens[-1] + tokens)
            self.bytes.append(self.bytes[-1] + size)
            self.own.append(own)

    def cost(self, index: int, keep_last: int | None) -> tuple[int, int]:
        """(tokens, bytes) of the call for `index` replaying everything (None) or turn 1 plus
        the last keep_last."""
        tokens, size = self.own[index - 1]
        earlier = index - 1
        if keep_last is None or earlier <= keep_last + 1:
            return tokens + self.tokens[earlier], size + self.bytes[earlier]
        first = index - keep_last  # the oldest of the last keep_last turns
        tokens += self.tokens[1] + self.tokens[earlier] - self.tokens[first - 1]
        size += self.bytes[1] + self.bytes[earlier] - self.bytes[first - 1]
        return tokens, size

    def call(self, index: int, keep_last: int | None) -> CallEstimate:
        """The estimate of the call for `index` (see `cost`)."""
        tokens, size = self.cost(index, keep_last)
        return CallEstimate(index=index, tokens=tokens, request_bytes=size)


def estimate_session_fit(
    profile: ModelProfile, loads: Sequence[TurnLoad], policy: HistoryPolicy
) -> SessionFit:
    """The estimate for every call of a scripted session under its history policy (O(turns))."""
    prefix = _Prefix(profile, loads)
    keep = None if policy.is_full else policy.keep_last
    calls = tuple(prefix.call(n, keep) for n in range(1, len(loads) + 1))
    return SessionFit(calls=calls, context_tokens=profile.context_tokens)


def largest_fitting_keep_last(profile: ModelProfile, loads: Sequence[TurnLoad]) -> int | None:
    """The largest `keep_last` for which `{anchor: first, keep_last: k}` fits, or None.

    A call replays a superset of turns when keep_last grows, so "call n fits" is monotone in k:
    the answer is the smallest over calls of each call's largest fitting k. One pointer that only
    moves down finds it in O(turns) checks (each O(1) with prefix sums), not one pass per k.
    """
    prefix = _Prefix(profile, loads)
    max_tokens, max_bytes = profile.context_tokens, INLINE_REQUEST_LIMIT_BYTES
    keep = max(len(loads) - 2, 1)
    for index in range(1, len(loads) + 1):
        tokens, size = prefix.cost(index, keep)
        while tokens > max_tokens or size > max_bytes:
            if keep == 1:
                return None
            keep -= 1
            tokens, size = prefix.cost(index, keep)
    return keep
