"""Pure parsing of Gemini 200 answers: the parts that came back and the usable image."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from shared.errors import (
    Blocked,
    MalformedResponse,
    NoImage,
    PermanentError,
    TransientError,
)
from shared.responses import (
    BLOCKING_FINISH_REASONS,
    ApiResponse,
    ReturnedPart,
    check_response,
    parse_success,
)

# Every byte value, so the base64 text contains '+' and '/' (and '-' / '_' when URL-safe).
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(255, -1, -1)) * 4


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _body(parts: list[dict[str, Any]], finish: str | None = "STOP", **extra: Any) -> bytes:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    return json.dumps({"candidates": [candidate], **extra}).encode()


def _image_part(data: bytes, mime: str = "image/png", **extra: Any) -> dict[str, Any]:
    return {"inlineData": {"mimeType": mime, "data": _b64(data)}, **extra}


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
