"""What to do next: the commands editqueue recommends when it refuses something, in one place.

Every command built here can be run as written (tests/producer/test_advice.py runs each one and
sees it accepted). `NEW_SID` and `PROMPT` are the only placeholders: the id a fork prints and the
user's own words.
"""

from __future__ import annotations

import math

from shared.models import HistoryPolicy

NEW_SID = "NEW_SID"


def fork_command(
    sid: str, at: int, history: HistoryPolicy | None = None, budget_usd: float | None = None
) -> str:
    """`editqueue fork SID --at N [--history ...] [--budget-usd ...]`."""
    option = f" --history {history.spelling}" if history is not None else ""
    option += f" --budget-usd {budget_usd:.2f}" if budget_usd is not None else ""
    return f"`editqueue fork {sid} --at {at}{option}`"


def append_command(sid: str) -> str:
    """`editqueue append SID PROMPT`."""
    return f"`editqueue append {sid} PROMPT`"


def fork_then_append(why: str, fork: str) -> str:
    """`<why>, <fork command>, then <append to the fork>`: the two steps that continue a session."""
    return f"{why}, {fork}, then {append_command(NEW_SID)}"


def continue_elsewhere(sid: str, committed: int) -> str:
    """How to go on from a session that will not run again (cancelled)."""
    if committed == 0:
        return "no turn was committed: submit the spec again to start over"
    why = f"continue in a fork of its {committed} committed turn(s)"
    return fork_then_append(why, fork_command(sid, committed))


def redo_turn(sid: str, index: int) -> str:
    """How to run a committed turn again: a fork of the turns before it, then the turn again."""
    if index == 1:
        return "to redo turn 1, submit the spec again (a fork keeps at least turn 1)"
    todo = fork_then_append("to redo it, fork the turns before it", fork_command(sid, index - 1))
    return f"{todo} with the turn's prompt"


def reanchor(sid: str, at: int, keep_last: int) -> str:
    """How a session that outgrew a limit continues: a fork at `at` that re-anchors its history."""
    policy = HistoryPolicy(anchor="first", keep_last=keep_last)
    return fork_then_append("continue in a fork that re-anchors", fork_command(sid, at, policy))


def raise_budget(scope: str, limit_usd: float, price_usd: float, sid: str, index: int) -> str:
    """How a turn held by a budget goes on: a larger batch budget, or a fork with a larger one.

    `scope` is `batch:<id>` or `session:<id>`; the amount proposed lets this turn through.
    """
    enough = math.ceil((limit_usd + price_usd) * 100) / 100
    kind, _, owner = scope.partition(":")
    if kind == "batch":
        return f"raise it with `editqueue budget {owner} --usd {enough:.2f}` and the turn resumes"
    if index == 1:
        return "a session's budget_usd is fixed: submit the spec again with a larger one"
    why = "a session's budget_usd is fixed: continue in a fork with a larger one"
    return fork_then_append(why, fork_command(sid, index - 1, budget_usd=enough))
