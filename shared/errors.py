"""The one error tree: transient errors retry with backoff, permanent errors fail the turn, and
"not now" outcomes wait without counting against the turn.

Which error leads to which action is decided in one place: `worker.actions.action_for`.

What to do next: the commands editqueue recommends when it refuses something are built here too
(`fork_command`, `raise_budget` ...), so every refusal words its advice the same way. Every
command built here can be run as written (tests/producer/test_advice.py runs each one and sees it
accepted). `NEW_SID` and `PROMPT` are the only placeholders: the id a fork prints and the user's
own words.
"""

from __future__ import annotations

import math


class EditQueueError(Exception):
    """Base of every error editqueue raises on purpose."""

    kind = "error"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class TransientError(EditQueueError):
    """Worth retrying: the same call may succeed later."""

    kind = "transient"


class PermanentError(EditQueueError):
    """Retrying the same call will not help: fail the turn with the reason."""

    kind = "permanent"


class NotNow(EditQueueError):
    """Nothing went wrong, but the turn cannot run now: it waits, the attempt is not spent."""

    kind = "not_now"


# --- transient leaves -------------------------------------------------------------------------


class RateLimited(TransientError):
    """The API answered 429; wait at least `retry_after_s` when it says so."""

    kind = "rate_limited"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = 429,
        retry_after_s: float | None = None,
        daily: bool = False,
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after_s = retry_after_s
        self.daily = daily


class ServerError(TransientError):
    """The API answered 408/500/502/503/504."""

    kind = "server_error"


class Timeout(TransientError):
    """The call did not finish within its total deadline."""

    kind = "timeout"


class ConnectionFailed(TransientError):
    """The API could not be reached (refused, reset, DNS)."""

    kind = "connection"


class MalformedResponse(TransientError):
    """The API answered 200 with a body that is not the JSON it promises."""

    kind = "malformed_response"


class NoImage(TransientError):
    """The API answered without an image; retried a bounded number of times, then permanent."""

    kind = "no_image"


class StorageUnavailable(TransientError):
    """The object store failed or timed out; the operation may be retried."""

    kind = "storage"


class BrokerUnavailable(TransientError):
    """The broker (Redis) refused or dropped the connection while sending a task."""

    kind = "broker"


class WebhookUnreachable(TransientError):
    """The webhook receiver could not be reached or did not answer in time."""

    kind = "webhook_unreachable"


# --- permanent leaves -------------------------------------------------------------------------


class BadRequest(PermanentError):
    """The API refused the request as malformed (400), e.g. a bad thought signature."""

    kind = "bad_request"


class AuthError(PermanentError):
    """The API refused the key or the project has no access (401/403)."""

    kind = "auth"


class NotFoundError(PermanentError):
    """The API does not know the model or resource (404)."""

    kind = "not_found"


class Blocked(PermanentError):
    """The prompt or the generated image was blocked for safety or policy reasons."""

    kind = "blocked"


class HistoryTooLarge(PermanentError):
    """The session's history no longer fits the request-size or context limits."""

    kind = "history_too_large"


class InvalidSpec(PermanentError):
    """A session spec, turn or CLI argument is invalid; the message says where and what to do."""

    kind = "invalid_spec"


class SessionExists(InvalidSpec):
    """A client-chosen session id is already taken (in the same tenant)."""

    kind = "session_exists"


class UnknownSession(PermanentError):
    """No session with this id exists in the store."""

    kind = "unknown_session"


class InvalidState(PermanentError):
    """The operation does not apply to the session or turn in its current state."""

    kind = "invalid_state"


class ObjectNotFound(PermanentError):
    """A stored object that must exist is missing."""

    kind = "object_missing"


class WebhookRefused(PermanentError):
    """The webhook destination is not a public address (or cannot be resolved)."""

    kind = "webhook_refused"


class StartupRefused(InvalidSpec):
    """A start-up check failed; the message names the setting and what to do."""

    kind = "startup_refused"


class InteractionGone(PermanentError):
    """The previous interaction is no longer there (expired, deleted, another key or project)."""

    kind = "interaction_gone"


# --- "not now" leaves -------------------------------------------------------------------------


class NoToken(NotNow):
    """The fleet's rate limit or in-flight cap has no room for this call for `wait_s`."""

    kind = "no_token"

    def __init__(self, message: str, *, wait_s: float) -> None:
        super().__init__(message)
        self.wait_s = wait_s


class OverBudget(NotNow):
    """The turn's price would pass a budget; it waits for the budget to be raised."""

    kind = "budget"


class Cancelled(NotNow):
    """The session was cancelled while the turn was being prepared: it stops, nothing fails."""

    kind = "cancelled"


class LeaseHeld(NotNow):
    """Another delivery of the same turn holds its lease; this one comes back shortly."""

    kind = "lease_held"


NEW_SID = "NEW_SID"


def fork_command(
    sid: str, at: int, history: str | None = None, budget_usd: float | None = None
) -> str:
    """`editqueue fork SID --at N [--history ...] [--budget-usd ...]` (`history` as the command
    line spells a policy: `HistoryPolicy.spelling`)."""
    option = f" --history {history}" if history is not None else ""
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
