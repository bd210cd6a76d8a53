"""The pure history-fit estimate: tokens and inline bytes of every call of a scripted session."""

from __future__ import annotations

import random
import time

import pytest

from producer.fit import (
    SessionFit,
    TurnLoad,
    estimate_call,
    estimate_session_fit,
    largest_fitting_keep_last,
)
from shared.catalog import NB2, PRO, ModelProfile, estimated_image_bytes
from shared.session_spec import HistoryPolicy

FULL = HistoryPolicy()
ONE_K = estimated_image_bytes("1:1", "1K") * 4 // 3


def loads(n: int, size: str = "1K", ratio: str = "1:1", chars: int = 8) -> list[TurnLoad]:
    return [TurnLoad(prompt_chars=chars, image_size=size, aspect_ratio=ratio) for _ in range(n)]


@pytest.mark.parametrize(
    ("index", "tokens", "request_bytes"),
    [
        (1, 2 + 1120, 8),  # prompt + its output image; nothing replayed
        (2, (2 + 1120) * 2, 8 * 2 + ONE_K),  # turn 1's prompt and image replayed
        (3, (2 + 1120) * 3, 8 * 3 + ONE_K * 2),
    ],
)
def test_each_call_counts_the_replayed_history_and_its_output(
    index: int, tokens: int, request_bytes: int
) -> None:
    call = estimate_call(NB2, loads(3), FULL, index)

    assert (call.tokens, call.request_bytes) == (tokens, request_bytes)


def test_reference_images_cost_their_base64_bytes_and_a_fixed_token_count() -> None:
    with_image = [TurnLoad(prompt_chars=4, user_image_bytes=(3000,), image_size="1K")]

    call = estimate_call(NB2, with_image, FULL, 1)

    assert call.tokens == 1 + 1120 + 1120
    assert call.request_bytes == 4 + 4000


def test_re_anchoring_replays_only_the_first_and_the_last_turns() -> None:
    anchored = HistoryPolicy(anchor="first", keep_last=2)

    call = estimate_call(NB2, loads(10), anchored, 10)

    assert call.tokens == (2 + 1120) * 4  # turns 1, 8, 9 and the call itself


def test_a_long_4k_session_overflows_the_inline_limit_first() -> None:
    fit = estimate_session_fit(NB2, loads(8, size="4K", ratio="16:9"), FULL)

    overflow = fit.first_overflow
    assert overflow is not None and not fit.fits
    assert overflow.request_bytes > fit.limit_bytes
    assert overflow.tokens < fit.context_tokens


def test_the_pro_models_smaller_context_window_is_the_limit_for_many_small_turns() -> None:
    fit = estimate_session_fit(PRO, loads(60, size="1K"), FULL)

    overflow = fit.first_overflow
    assert overflow is not None
    assert overflow.tokens > PRO.context_tokens
    assert overflow.request_bytes < fit.limit_bytes


def test_the_largest_fitting_keep_last_is_suggested() -> None:
    session = loads(8, size="4K", ratio="16:9")

    keep = largest_fitting_keep_last(NB2, session)

    assert keep is not None
    assert estimate_session_fit(NB2, session, HistoryPolicy(anchor="first", keep_last=keep)).fits
    assert not estimate_session_fit(
        NB2, session, HistoryPolicy(anchor="first", keep_last=keep + 1)
    ).fits


def _brute_keep_last(profile: ModelProfile, session: list[TurnLoad]) -> int | None:
    for keep in range(max(len(session) - 2, 1), 0, -1):
        policy = HistoryPolicy(anchor="first", keep_last=keep)
        calls = [estimate_call(profile, session, policy, n) for n in range(1, len(session) + 1)]
        fit = SessionFit(calls=tuple(calls), context_tokens=profile.context_tokens)
        if fit.fits:
            return keep
    return None


@pytest.mark.parametrize("seed", range(12))
def test_the_linear_estimate_agrees_with_the_call_by_call_one(seed: int) -> None:
    rng = random.Random(seed)
    session = [
        TurnLoad(
            prompt_chars=rng.randint(1, 400_000),
            user_image_bytes=tuple(rng.randint(1, 9_000_000) for _ in range(rng.randint(0, 2))),
            image_size=rng.choice(["1K", "2K", "4K"]),
            aspect_ratio="16:9",
        )
        for _ in range(rng.randint(1, 40))
    ]
    policy = rng.choice([FULL, HistoryPolicy(anchor="first", keep_last=rng.randint(1, 5))])

    fit = estimate_session_fit(PRO, session, policy)

    assert fit.calls == tuple(
        estimate_call(PRO, session, policy, n) for n in range(1, len(session) + 1)
    )
    assert largest_fitting_keep_last(PRO, session) == _brute_keep_last(PRO, session)


def test_a_ten_thousand_turn_session_is_judged_in_well_under_a_second() -> None:
    session = [  # every turn different, so nothing is computed once for many
        TurnLoad(prompt_chars=n + 1, image_size="4K", aspect_ratio="16:9") for n in range(10_000)
    ]

    # CPU time, not wall time: the bound is about the algorithm (the cubic one took minutes), and
    # a loaded CI machine must not make it flaky.
    started = time.process_time()
    fit = estimate_session_fit(NB2, session, FULL)
    keep = largest_fitting_keep_last(NB2, session)
    elapsed = time.process_time() - started

    print(f"fit check of 10,000 turns: {elapsed * 1000:.0f} ms CPU")
    assert not fit.fits and keep is not None
    assert elapsed < 1.0
