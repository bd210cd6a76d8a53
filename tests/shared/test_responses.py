"""Pure classification of Gemini answers: parsed parts, usable image, and what an error means."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from shared.errors import (
    AuthError,
    BadRequest,
    Blocked,
    EditQueueError,
    MalformedResponse,
    NoImage,
    NotFoundError,
    PermanentError,
    RateLimited,
    ServerError,
    TransientError,
)
from shared.responses import (
    BLOCKING_FINISH_REASONS,
    ApiResponse,
    ReturnedPart,
    check_response,
    classify_http_error,
    parse_retry_delay,
    parse_success,
    redact,
)

# Every byte value, so the base64 text contains '+' and '/' (and '-' / '_' when URL-safe).
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(255, -1, -1)) * 4
SECRET = "AIzaSyFAKE-unit-test-secret_42"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _body(parts: list[dict[str, Any]], finish: str | None = "STOP", **extra: Any) -> bytes:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    return json.dumps({"candidates": [candidate], **extra}).encode()


def _image_part(data: bytes, mime: str = "image/png", **extra: Any) -> dict[str, Any]:
    return {"inlineData": {"mimeType": mime, "data": _b64(data)}, **extra}


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


# --- parse_success ------------------------------------------------------------------------------


def test_parse_success_decodes_the_image_and_keeps_metadata() -> None:
    body = _body(
        [
            {"text": "Here you go", "thoughtSignature": "c2lnMQ=="},
            _image_part(PNG, thoughtSignature="c2lnMg=="),
        ],
        usageMetadata={"promptTokenCount": 10, "candidatesTokenCount": 1120},
        modelVersion="gemini-3.1-flash-image",
        responseId="resp-1",
    )
    resp = parse_success(body)
    assert resp.parts[0] == ReturnedPart(text="Here you go", thought_signature="c2lnMQ==")
    assert resp.parts[1].image == PNG
    assert resp.parts[1].returned_mime_type == "image/png"
    assert resp.parts[1].thought_signature == "c2lnMg=="
    assert resp.finish_reason == "STOP"
    assert resp.usage == {"promptTokenCount": 10, "candidatesTokenCount": 1120}
    assert (resp.model_version, resp.response_id) == ("gemini-3.1-flash-image", "resp-1")
    assert resp.candidate_count == 1


def test_parse_success_accepts_url_safe_unpadded_base64() -> None:
    data = base64.urlsafe_b64encode(PNG).decode().rstrip("=")
    assert "-" in data or "_" in data  # the test would prove nothing with a plain alphabet
    resp = parse_success(_body([{"inlineData": {"mimeType": "image/png", "data": data}}]))
    assert resp.parts[0].image == PNG


@pytest.mark.parametrize("data", [_b64(JPEG), _b64(JPEG).rstrip("=")])
def test_parse_success_accepts_standard_base64_with_or_without_padding(data: str) -> None:
    resp = parse_success(_body([{"inlineData": {"mimeType": "image/jpeg", "data": data}}]))
    assert resp.parts[0].image == JPEG


def test_parse_success_accepts_snake_case_keys() -> None:
    part = {
        "inline_data": {"mime_type": "image/jpeg", "data": _b64(JPEG)},
        "thought_signature": "s",
    }
    doc = {
        "candidates": [{"content": {"parts": [part]}, "finish_reason": "STOP"}],
        "usage_metadata": {"total_token_count": 5},
        "model_version": "m",
        "response_id": "r",
        "prompt_feedback": {"block_reason": "SAFETY"},
    }
    resp = parse_success(json.dumps(doc).encode())
    assert resp.parts[0].image == JPEG
    assert resp.parts[0].returned_mime_type == "image/jpeg"
    assert resp.parts[0].thought_signature == "s"
    assert (resp.finish_reason, resp.model_version, resp.response_id) == ("STOP", "m", "r")
    assert resp.usage == {"total_token_count": 5}
    assert resp.prompt_feedback == {"block_reason": "SAFETY"}


def test_parse_success_keeps_unknown_part_fields_verbatim() -> None:
    file_part = {
        "fileData": {"mimeType": "image/png", "fileUri": "https://x/f"},
        "thoughtSignature": "t",
    }
    code_part = {"executableCode": {"language": "PYTHON", "code": "print(1)"}}
    resp = parse_success(_body([file_part, code_part]))
    assert resp.parts[0].other == {"fileData": {"mimeType": "image/png", "fileUri": "https://x/f"}}
    assert resp.parts[0].thought_signature == "t"
    assert resp.parts[1].other == code_part


def test_parse_success_marks_thought_parts() -> None:
    resp = parse_success(_body([_image_part(PNG, thought=True), {"text": "x", "thought": True}]))
    assert [part.thought for part in resp.parts] == [True, True]


def test_parse_success_reads_an_answer_without_candidates() -> None:
    resp = parse_success(json.dumps({"promptFeedback": {"blockReason": "OTHER"}}).encode())
    assert (resp.parts, resp.candidate_count, resp.finish_reason) == ([], 0, None)
    assert resp.prompt_feedback == {"blockReason": "OTHER"}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(_body([_image_part(PNG)])[:-40], id="truncated JSON"),
        pytest.param(b"", id="empty body"),
        pytest.param(b"<html><body>502 Bad Gateway</body></html>", id="HTML page"),
        pytest.param(b"\xff\xfe\x00garbage", id="not UTF-8"),
        pytest.param(b"[1, 2]", id="JSON that is not an object"),
        pytest.param(b'{"candidates": {"a": 1}}', id="candidates not a list"),
        pytest.param(b'{"candidates": [{"content": {"parts": "x"}}]}', id="parts not a list"),
        pytest.param(b'{"candidates": [{"content": {"parts": [7]}}]}', id="part not an object"),
        pytest.param(
            _body([{"inlineData": {"mimeType": "image/png", "data": "@@not base64@@"}}]),
            id="invalid base64",
        ),
        pytest.param(_body([{"text": 12}]), id="text not a string"),
    ],
)
def test_parse_success_raises_malformed_response_for_bodies_that_are_not_the_promised_json(
    body: bytes,
) -> None:
    with pytest.raises(MalformedResponse) as caught:
        parse_success(body)
    assert caught.value.status == 200
    assert isinstance(caught.value, TransientError)


# --- check_response -----------------------------------------------------------------------------


def _response(*parts: ReturnedPart, finish: str | None = "STOP", **extra: Any) -> ApiResponse:
    return ApiResponse(parts=list(parts), finish_reason=finish, **extra)


def test_check_response_returns_the_image_part() -> None:
    image = ReturnedPart(image=PNG, returned_mime_type="image/png", thought_signature="s")
    assert check_response(_response(image)) is image


def test_check_response_finds_an_image_that_is_not_the_first_part() -> None:
    image = ReturnedPart(image=JPEG, returned_mime_type="image/jpeg")
    resp = _response(ReturnedPart(text="Here is the room"), ReturnedPart(text="more"), image)
    assert check_response(resp) is image


def test_check_response_skips_thought_images() -> None:
    interim = ReturnedPart(image=PNG, thought=True)
    final = ReturnedPart(image=JPEG, thought_signature="s")
    resp = _response(ReturnedPart(text="thinking", thought=True), interim, final)
    assert check_response(resp) is final


def test_check_response_raises_no_image_when_only_thought_images_came_back() -> None:
    with pytest.raises(NoImage):
        check_response(_response(ReturnedPart(image=PNG, thought=True)))


@pytest.mark.parametrize(
    "feedback", [{"blockReason": "PROHIBITED_CONTENT"}, {"block_reason": "PROHIBITED_CONTENT"}]
)
def test_a_blocked_prompt_raises_blocked_naming_the_reason(feedback: dict[str, Any]) -> None:
    resp = _response(finish=None, prompt_feedback=feedback, candidate_count=0)
    with pytest.raises(Blocked, match="PROHIBITED_CONTENT") as caught:
        check_response(resp)
    assert isinstance(caught.value, PermanentError)
    assert caught.value.status == 200


@pytest.mark.parametrize("reason", sorted(BLOCKING_FINISH_REASONS))
def test_every_safety_finish_reason_raises_blocked(reason: str) -> None:
    with pytest.raises(Blocked, match=reason):
        check_response(_response(ReturnedPart(text="no"), finish=reason))


def test_safety_finish_reasons_are_recognised_in_any_case() -> None:
    with pytest.raises(Blocked, match="IMAGE_SAFETY"):
        check_response(_response(finish="image_safety"))


def test_the_documented_safety_and_policy_reasons_are_all_blocking() -> None:
    expected = {"SAFETY", "IMAGE_SAFETY", "PROHIBITED_CONTENT", "IMAGE_PROHIBITED_CONTENT"}
    expected |= {"BLOCKLIST", "SPII", "RECITATION", "IMAGE_RECITATION"}
    assert expected == BLOCKING_FINISH_REASONS


def test_a_text_only_answer_raises_no_image_quoting_the_text() -> None:
    resp = _response(ReturnedPart(text="I can't draw that room."), finish="STOP")
    with pytest.raises(NoImage, match="I can't draw that room") as caught:
        check_response(resp)
    assert caught.value.status == 200
    assert isinstance(caught.value, TransientError)


def test_an_answer_without_candidates_raises_no_image() -> None:
    with pytest.raises(NoImage, match="without any candidate"):
        check_response(_response(finish=None, candidate_count=0))


@pytest.mark.parametrize(
    "reason", ["NO_IMAGE", "IMAGE_OTHER", "OTHER", "MISSING_THOUGHT_SIGNATURE", None]
)
def test_no_image_finish_reasons_without_an_image_raise_no_image(reason: str | None) -> None:
    with pytest.raises(NoImage, match=reason or "absent"):
        check_response(_response(ReturnedPart(text="hmm"), finish=reason))


@pytest.mark.parametrize("reason", ["NO_IMAGE", "IMAGE_OTHER"])
def test_no_image_finish_reasons_refuse_an_image_that_came_anyway(reason: str) -> None:
    with pytest.raises(NoImage):
        check_response(_response(ReturnedPart(image=PNG), finish=reason))


@pytest.mark.parametrize("reason", ["STOP", "MAX_TOKENS", "SOMETHING_NEW", None])
def test_an_image_is_kept_whatever_the_non_blocking_finish_reason(reason: str | None) -> None:
    image = ReturnedPart(image=PNG)
    assert check_response(_response(image, finish=reason)) is image


def test_image_bytes_that_are_no_known_format_raise_malformed_response() -> None:
    with pytest.raises(MalformedResponse, match="image/png"):
        check_response(
            _response(ReturnedPart(image=b"not an image", returned_mime_type="image/png"))
        )


def test_an_empty_inline_image_does_not_count_as_an_image() -> None:
    with pytest.raises(NoImage):
        check_response(_response(ReturnedPart(image=b"", returned_mime_type="image/png")))


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


# --- parse_retry_delay and redact ---------------------------------------------------------------


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


def test_redact_removes_the_secret_and_its_url_encoded_form() -> None:
    secret = "abc/def+ghi"
    text = f"header {secret} and url ?x=1&other=abc%2Fdef%2Bghi"
    assert redact(text, secret) == "header [REDACTED] and url ?x=1&other=[REDACTED]"


def test_redact_removes_a_key_url_parameter_even_without_the_secret() -> None:
    text = "GET https://host/v1beta/models/m:generateContent?key=AIzaLEAK&alt=json"
    assert (
        redact(text, None)
        == "GET https://host/v1beta/models/m:generateContent?key=[REDACTED]&alt=json"
    )


def test_redact_leaves_ordinary_text_alone() -> None:
    assert redact("HTTP 503 UNAVAILABLE: overloaded", SECRET) == "HTTP 503 UNAVAILABLE: overloaded"


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
