"""What a Gemini error answer means, without I/O: its error leaf, retry delay and quota kind."""

from __future__ import annotations

import json
import re
from typing import Any

from shared.errors import (
    AuthError,
    BadRequest,
    EditQueueError,
    NotFoundError,
    PermanentError,
    RateLimited,
    ServerError,
)
from shared.redaction import redact
from shared.responses import pick, trim_message

# Google's own retryable set (the SDK's retry codes), minus 429 which has its own leaf.
SERVER_ERROR_STATUSES = frozenset({408, 500, 502, 503, 504})
_PERMANENT_BY_STATUS: dict[int, tuple[type[PermanentError], str]] = {
    400: (BadRequest, "the API refused the request as malformed; retrying will not help"),
    401: (AuthError, "check GEMINI_API_KEY"),
    402: (AuthError, "prepaid credit exhausted; add credit to the project's billing account"),
    403: (AuthError, "check GEMINI_API_KEY and that its project may use this model"),
    404: (NotFoundError, "check the model id (EDITQUEUE_MODEL); preview ids get retired"),
}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)s\s*$")
_RETRY_IN_RE = re.compile(r"retry in\s+(\d+(?:\.\d+)?)\s*(ms|s)\b", re.IGNORECASE)
_TAG_RE = re.compile(r"<[^>]*>")


def parse_retry_delay(text: str | None) -> float | None:
    """Seconds from a Duration string ("47s", "45.8s") or a "Please retry in 26.66s" message."""
    if not text:
        return None
    if match := _DURATION_RE.match(text):
        return float(match.group(1))
    if match := _RETRY_IN_RE.search(text):
        value = float(match.group(1))
        return value / 1000 if match.group(2).lower() == "ms" else value
    return None


def _duration_s(value: Any) -> float | None:
    if isinstance(value, str):
        return parse_retry_delay(value)
    if isinstance(value, dict):  # the proto object form {"seconds": "47", "nanos": 5e8}
        try:
            return float(value.get("seconds", 0)) + float(value.get("nanos", 0)) / 1e9
        except (TypeError, ValueError):
            return None
    return None


def _quota_info(error: dict[str, Any]) -> tuple[float | None, bool]:
    delay: float | None = None
    daily = False
    details = error.get("details")
    for detail in details if isinstance(details, list) else []:
        if not isinstance(detail, dict):
            continue
        if delay is None:
            delay = _duration_s(pick(detail, "retryDelay", "retry_delay"))
        violations = detail.get("violations")
        for violation in violations if isinstance(violations, list) else []:
            if isinstance(violation, dict):
                quota_id = str(pick(violation, "quotaId", "quota_id") or "")
                metric = str(pick(violation, "quotaMetric", "quota_metric") or "")
                daily = daily or "PerDay" in quota_id or "per_day" in metric
    if delay is None:
        delay = parse_retry_delay(str(error.get("message") or ""))
    return delay, daily


def _error_object(body: bytes | bytearray) -> dict[str, Any] | None:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if isinstance(doc, list) and doc:  # some Google front ends wrap the error in a list
        doc = doc[0]
    error = doc.get("error") if isinstance(doc, dict) else None
    return error if isinstance(error, dict) else None


def _describe(status: int, error: dict[str, Any] | None, body: bytes | bytearray) -> str:
    if error is None:  # an HTML page from a proxy or load balancer: keep its words, not its tags
        text = _TAG_RE.sub(" ", body[:4096].decode("utf-8", errors="replace"))
        return f"HTTP {status}: {trim_message(text) or 'empty body'}"
    label = f"HTTP {status} {error['status']}" if error.get("status") else f"HTTP {status}"
    return f"{label}: {trim_message(str(error.get('message') or 'no message'))}"


def classify_http_error(
    status: int, body: bytes | bytearray, *, secret: str | None = None
) -> EditQueueError:
    """The error a non-200 answer means; every error carries `.status`, never the secret."""
    error = _error_object(body)
    message = redact(_describe(status, error, body), secret)
    if status == 429:
        delay, daily = _quota_info(error or {})
        hint = "; daily quota exhausted, it resets at midnight Pacific" if daily else ""
        return RateLimited(message + hint, status=status, retry_after_s=delay, daily=daily)
    if status in SERVER_ERROR_STATUSES or status >= 500:
        return ServerError(message, status=status)
    if status in _PERMANENT_BY_STATUS:
        cls, hint = _PERMANENT_BY_STATUS[status]
        return cls(f"{message}; {hint}", status=status)
    if status >= 400:
        return PermanentError(message, status=status)
    return PermanentError(
        f"{message}; unexpected status, check EDITQUEUE_API_BASE_URL", status=status
    )
