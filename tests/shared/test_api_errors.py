"""Pure classification of Gemini error answers: the error leaf, retry delay, quota kind, and the
key kept out of the message."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from shared.api_errors import classify_http_error, parse_retry_delay
from shared.errors import (
    AuthError,
    BadRequest,
    EditQueueError,
    NotFoundError,
    PermanentError,
    RateLimited,
    ServerError,
    TransientError,
)

SECRET = "AIzaSyFAKE-unit-test-secret_42"


def _error_body(code: int, status: str, message: str, details: list[Any] | None = None) -> bytes:
    error = {"code": code, "message": message, "status": status, "details": details or []}
    return json.dumps({"error": error}).encode()


def _quota_body(
    quota_id: str = "GenerateRequestsPerMinutePerProjectPerModel", **retry: Any
) -> bytes:
    details: list[Any] = [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{"quotaMetric": "generate_requests", "quotaId": quota_id}],
        }
    ]
    if retry:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", **retry})
    return _error_body(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", details)


# --- classify_http_error ------------------------------------------------------------------------

HTML_502 = (
    b"<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"
)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            400,
            _error_body(400, "INVALID_ARGUMENT", "Image part is missing a thought_signature"),
            BadRequest,
        ),
        (
            400,
            _error_body(400, "FAILED_PRECONDITION", "User location is not supported"),
            BadRequest,
        ),
        (401, _error_body(401, "UNAUTHENTICATED", "API key not valid"), AuthError),
        (
            402,
            _error_body(402, "RESOURCE_EXHAUSTED", "Your prepaid credits are depleted"),
            AuthError,
        ),
        (
            403,
            _error_body(403, "PERMISSION_DENIED", "The caller does not have permission"),
            AuthError,
        ),
        (404, _error_body(404, "NOT_FOUND", "models/gemini-x is not found"), NotFoundError),
        (408, _error_body(408, "DEADLINE_EXCEEDED", "Request timeout"), ServerError),
        (409, _error_body(409, "ABORTED", "conflict"), PermanentError),
        (413, b"Request Entity Too Large", PermanentError),
        (429, _quota_body(retryDelay="47s"), RateLimited),
        (429, _error_body(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted"), RateLimited),
        (429, b"", RateLimited),
        (500, _error_body(500, "INTERNAL", "An internal error has occurred"), ServerError),
        (501, _error_body(501, "NOT_IMPLEMENTED", "nope"), ServerError),
        (502, HTML_502, ServerError),
        (503, _error_body(503, "UNAVAILABLE", "The model is overloaded"), ServerError),
        (504, _error_body(504, "DEADLINE_EXCEEDED", "Deadline expired"), ServerError),
        (504, b"upstream request timeout", ServerError),
        (302, b"", PermanentError),
    ],
)
def test_classify_http_error_maps_each_status_to_its_error(
    status: int, body: bytes, expected: type[EditQueueError]
) -> None:
    error = classify_http_error(status, body)
    assert type(error) is expected
    assert error.status == status
    assert error.message.startswith(f"HTTP {status}")
    assert str(error) == error.message


@pytest.mark.parametrize(
    ("status", "transient"),
    [
        (408, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (599, True),
        (400, False),
        (401, False),
        (402, False),
        (403, False),
        (404, False),
        (422, False),
        (499, False),
    ],
)
def test_only_googles_retryable_statuses_and_other_5xx_are_transient(
    status: int, transient: bool
) -> None:
    assert isinstance(classify_http_error(status, b"{}"), TransientError) is transient


def test_the_message_carries_the_google_status_and_api_message() -> None:
    error = classify_http_error(503, _error_body(503, "UNAVAILABLE", "The model is overloaded."))
    assert error.message == "HTTP 503 UNAVAILABLE: The model is overloaded."


def test_a_long_api_message_is_trimmed() -> None:
    error = classify_http_error(400, _error_body(400, "INVALID_ARGUMENT", "x" * 5000))
    assert 300 <= len(error.message) < 450
    assert error.message.endswith(
        "...; the API refused the request as malformed; retrying will not help"
    )


def test_an_html_error_page_classifies_by_status_and_keeps_its_words_not_its_tags() -> None:
    error = classify_http_error(502, HTML_502)
    assert isinstance(error, ServerError)
    assert "Bad Gateway" in error.message
    assert "<" not in error.message


def test_a_402_says_credit_is_exhausted_and_is_permanent() -> None:
    error = classify_http_error(402, _error_body(402, "RESOURCE_EXHAUSTED", "Billing issue"))
    assert isinstance(error, PermanentError)
    assert "credit exhausted" in error.message


def test_a_404_points_at_the_model_setting() -> None:
    assert (
        "EDITQUEUE_MODEL" in classify_http_error(404, _error_body(404, "NOT_FOUND", "gone")).message
    )


def test_an_error_wrapped_in_a_list_is_read() -> None:
    body = json.dumps(
        [{"error": {"code": 403, "message": "denied", "status": "PERMISSION_DENIED"}}]
    )
    assert classify_http_error(403, body.encode()).message.startswith(
        "HTTP 403 PERMISSION_DENIED: denied"
    )


@pytest.mark.parametrize(
    ("body", "retry_after_s"),
    [
        pytest.param(_quota_body(retryDelay="47s"), 47.0, id="whole seconds"),
        pytest.param(_quota_body(retryDelay="45.837906927s"), 45.837906927, id="fractional"),
        pytest.param(_quota_body(retry_delay="12s"), 12.0, id="snake case field"),
        pytest.param(
            _quota_body(retryDelay={"seconds": "3", "nanos": 500000000}), 3.5, id="object"
        ),
        pytest.param(
            _error_body(429, "RESOURCE_EXHAUSTED", "Quota exceeded. Please retry in 26.66s."),
            26.66,
            id="message fallback",
        ),
        pytest.param(
            _error_body(429, "RESOURCE_EXHAUSTED", "Quota exceeded. Please retry in 514.9ms."),
            0.5149,
            id="message fallback in ms",
        ),
        pytest.param(_quota_body(), None, id="absent"),
        pytest.param(b"Too Many Requests", None, id="not JSON"),
    ],
)
def test_a_429_carries_the_retry_delay_the_api_asked_for(
    body: bytes, retry_after_s: float | None
) -> None:
    error = classify_http_error(429, body)
    assert isinstance(error, RateLimited)
    assert error.retry_after_s == (pytest.approx(retry_after_s) if retry_after_s else None)


def test_retry_info_wins_over_the_message() -> None:
    details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "47s"}]
    body = _error_body(429, "RESOURCE_EXHAUSTED", "Please retry in 3s.", details)
    assert classify_http_error(429, body).retry_after_s == 47.0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("quota_id", "daily"),
    [
        ("GenerateRequestsPerDayPerProjectPerModel-FreeTier", True),
        ("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", False),
        ("GenerateContentInputTokensPerModelPerMinute-FreeTier", False),
    ],
)
def test_a_per_day_quota_violation_marks_the_429_daily(quota_id: str, daily: bool) -> None:
    error = classify_http_error(429, _quota_body(quota_id, retryDelay="30s"))
    assert isinstance(error, RateLimited)
    assert error.daily is daily
    assert ("midnight Pacific" in error.message) is daily


def test_a_bare_429_is_not_daily_and_has_no_delay() -> None:
    error = classify_http_error(
        429, _error_body(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted")
    )
    assert isinstance(error, RateLimited)
    assert (error.daily, error.retry_after_s) == (False, None)


def test_classify_http_error_redacts_the_secret_from_the_api_message() -> None:
    body = _error_body(400, "INVALID_ARGUMENT", f"API key {SECRET} not valid")
    error = classify_http_error(400, body, secret=SECRET)
    assert SECRET not in error.message
    assert SECRET not in str(error)


# --- parse_retry_delay -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("47s", 47.0),
        ("45.837906927s", 45.837906927),
        ("0.5s", 0.5),
        (".25s", 0.25),
        ("Quota exceeded for metric: x, limit: 10.\nPlease retry in 26.66s.", 26.66),
        ("Please retry in 900ms", 0.9),
        ("Please RETRY IN 2s", 2.0),
        ("", None),
        (None, None),
        ("47", None),
        ("soon", None),
    ],
)
def test_parse_retry_delay_reads_durations_and_messages(
    text: str | None, seconds: float | None
) -> None:
    assert parse_retry_delay(text) == (pytest.approx(seconds) if seconds is not None else None)


@pytest.mark.parametrize("before", [b"", b"k", b"ke", b'{"echo": "your key was '])
def test_a_key_echoed_base64_encoded_in_an_error_body_is_redacted(before: bytes) -> None:
    echoed = base64.b64encode(before + SECRET.encode() + b'" }').decode()
    for encoded in (echoed, echoed.replace("+", "-").replace("/", "_")):
        body = _error_body(400, "INVALID_ARGUMENT", f"request rejected: {encoded}")

        error = classify_http_error(400, body, secret=SECRET)

        assert "[REDACTED]" in error.message
        for offset in range(3):  # no run of the key's own base64 characters is left
            run = base64.b64encode(b"\0" * offset + SECRET.encode()).decode()[4:-4]
            assert run not in error.message
            assert run.replace("+", "-").replace("/", "_") not in error.message
