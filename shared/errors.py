"""The one error tree: transient errors retry with backoff, permanent errors fail the turn, and
"not now" outcomes wait without counting against the turn.

Which error leads to which action is decided in one place: `worker.actions.action_for`.
"""

from __future__ import annotations


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
