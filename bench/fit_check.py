"""How long the "will it fit?" check of a scripted session takes, against the old way.

The check runs at every submit (CLI and HTTP) before anything is written: every call's tokens and
inline bytes, and, when a call overflows, the largest `{anchor: first, keep_last: k}` that fits.
The old way re-estimated the whole session call by call for every candidate k (about n^3); the
new one uses prefix sums and one falling pointer (linear). Both run here on the same sessions
(4K, 16:9, every prompt a different length) and must give the same answer.

    .venv/bin/python bench/fit_check.py [--turns 10000] [--baseline-turns 100 250]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

from producer.fit import (
    SessionFit,
    TurnLoad,
    estimate_call,
    estimate_session_fit,
    largest_fitting_keep_last,
)
from shared.catalog import NB2
from shared.session_spec import HistoryPolicy


def session(turns: int) -> list[TurnLoad]:
    return [
        TurnLoad(prompt_chars=n + 1, image_size="4K", aspect_ratio="16:9") for n in range(turns)
    ]


def old_keep_last(loads: Sequence[TurnLoad]) -> int | None:
    """The check as it was: every call re-estimated from scratch, for every candidate k."""
    for keep in range(max(len(loads) - 2, 1), 0, -1):
        policy = HistoryPolicy(anchor="first", keep_last=keep)
        calls = tuple(estimate_call(NB2, loads, policy, n) for n in range(1, len(loads) + 1))
        if SessionFit(calls=calls, context_tokens=NB2.context_tokens).fits:
            return keep
    return None


def new_check(loads: Sequence[TurnLoad]) -> int | None:
    estimate_session_fit(NB2, loads, HistoryPolicy())
    return largest_fitting_keep_last(NB2, loads)


def timed(
    check: Callable[[Sequence[TurnLoad]], int | None], loads: list[TurnLoad]
) -> tuple[float, int | None]:
    started = time.perf_counter()
    answer = check(loads)
    return time.perf_counter() - started, answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=10_000)
    parser.add_argument("--baseline-turns", type=int, nargs="+", default=[100, 250])
    args = parser.parse_args()
    for turns in args.baseline_turns:
        loads = session(turns)
        old_s, old_answer = timed(old_keep_last, loads)
        new_s, new_answer = timed(new_check, loads)
        assert old_answer == new_answer, (old_answer, new_answer)
        print(
            f"{turns:>6} turns: old {old_s * 1000:9.1f} ms, new {new_s * 1000:6.1f} ms "
            f"(keep_last {new_answer}), {old_s / new_s:,.0f}x faster"
        )
    new_s, answer = timed(new_check, session(args.turns))
    print(
        f"{args.turns:>6} turns: new {new_s * 1000:6.1f} ms (keep_last {answer}); old way not run"
    )


if __name__ == "__main__":
    main()
