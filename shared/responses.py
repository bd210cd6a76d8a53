"""Gemini answers classified without I/O: the parts that came back, and what an error means."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pybase64

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
)
from shared.images import sniff_mime

MESSAGE_MAX_CHARS = 300
REDACTED = "[REDACTED]"
MIN_ENCODED_CHARS = 16  # shorter runs could match ordinary text; real keys are ~39 characters
# Safety and policy stops: the same request would be blocked again, so retrying only costs money.
BLOCKING_FINISH_REASONS = frozenset(
    {
        "SAFETY",
        "IMAGE_SAFETY",
        "PROHIBITED_CONTENT",
        "IMAGE_PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",
        "IMAGE_RECITATION",
    }
)
# Stops that mean "no usable image" even if some image bytes came along.
NO_IMAGE_FINISH_REASONS = frozenset({"NO_IMAGE", "IMAGE_OTHER"})
# Google's own retryable set (the SDK's retry codes), minus 429 which has its own leaf.
SERVER_ERROR_STATUSES = frozenset({408, 500, 502, 503, 504})
_PERMANENT_BY_STATUS: dict[int, tuple[type[PermanentError], str]] = {
    400: (BadRequest, "the API refused the request as malformed; retrying will not help"),
    401: (AuthError, "check GEMINI_API_KEY"),
    402: (AuthError, "prepaid credit exhausted; add credit to the project's billing account"),
    403: (AuthError, "check GEMINI_API_KEY and that its project may use this model"),
    404: (NotFoundError, "check the model id (EDITQUEUE_MODEL); preview ids get retired"),
}
_PART_KEYS = frozenset(
    {"text", "inlineData", "inline_data", "thought", "thoughtSignature", "thought_signature"}
)
_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)s\s*$")
_RETRY_IN_RE = re.compile(r"retry in\s+(\d+(?:\.\d+)?)\s*(ms|s)\b", re.IGNORECASE)
_KEY_PARAM_RE = re.compile(r"([?&](?:key|api_key)=)[^&#\s'\"]+", re.IGNORECASE)
_TAG_RE = re.compile(r"<[^>]*>")


@dataclass(frozen=True, slots=True)
class ReturnedPart:
    """One response part as returned: text or decoded image bytes, thought flag and signature."""

    text: str | None = None
    image: bytes | None = field(default=None, repr=False)  # decoded inlineData, never transcoded
    returned_mime_type: str | None = None  # the declared mimeType, kept for verbatim replay
    thought: bool = False
    thought_signature: str | None = field(default=None, repr=False)  # can be megabytes
    other: dict[str, Any] = field(default_factory=dict)  # any other part field, verbatim


@dataclass(frozen=True, slots=True)
class ApiResponse:
    """The first candidate of a 200 answer plus the response-level metadata."""

    parts: list[ReturnedPart]
    finish_reason: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    model_version: str | None = None
    response_id: str | None = None
    prompt_feedback: dict[str, Any] | None = None
    candidate_count: int = 1
    latency_s: float = 0.0  # set by the HTTP client: connect to last body byte
    interaction_id: str | None = None  # the Interactions API's id for this answer
    interaction_created: str | None = None  # its `created` timestamp as sent (ISO 8601)
    upload_bytes: int = 0  # request body bytes sent for this answer (set by the turn runner)
    transport: str | None = None  # replay | chain | seed (set by the turn runner)


def _get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    # Proto3 JSON allows either spelling of a field; gateways and Google's samples mix them.
    return obj[camel] if camel in obj else obj.get(snake)


def _typed(value: Any, kind: type, what: str) -> Any:
    if value is not None and not isinstance(value, kind):
        raise MalformedResponse(f"HTTP 200 with {what} of type {type(value).__name__}", status=200)
    return value


def _decode_base64(data: str, where: str) -> bytes:
    # Google sends the standard alphabet; proto3 JSON parsers also accept URL-safe and unpadded.
    try:
        if "-" in data or "_" in data:
            data = data.translate(_URLSAFE_TO_STANDARD)
        if missing := -len(data) % 4:
            data += "=" * missing
        return pybase64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedResponse(
            f"HTTP 200 with invalid base64 in {where}: {exc}", status=200
        ) from exc


def _parse_part(raw: Any, index: int) -> ReturnedPart:
    where = f"response part {index}"
    _typed(raw, dict, where)
    image = mime = None
    inline = _typed(_get(raw, "inlineData", "inline_data"), dict, f"{where} inlineData")
    if inline is not None:
        mime = _typed(_get(inline, "mimeType", "mime_type"), str, f"{where} mimeType")
        # pop: the base64 text is released as soon as it is decoded, not kept beside the bytes
        data = _typed(inline.pop("data", None), str, f"{where} data") or ""
        image = _decode_base64(data, where)
    return ReturnedPart(
        text=_typed(raw.get("text"), str, f"{where} text"),
        image=image,
        returned_mime_type=mime,
        thought=bool(raw.get("thought", False)),
        thought_signature=_typed(
            _get(raw, "thoughtSignature", "thought_signature"), str, f"{where} thoughtSignature"
        ),
        other={key: value for key, value in raw.items() if key not in _PART_KEYS},
    )


def parse_success(body: bytes | bytearray) -> ApiResponse:
    """Parse a 200 generateContent body; MalformedResponse when it is not that JSON."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError
        raise MalformedResponse(
            f"HTTP 200 with a body that is not JSON ({len(body)} bytes): {exc}", status=200
        ) from exc
    _typed(doc, dict, "a JSON body")
    candidates = _typed(doc.get("candidates"), list, "candidates") or []
    first = _typed(candidates[0], dict, "candidate 0") if candidates else {}
    content = _typed(first.get("content"), dict, "candidate content") or {}
    raw_parts = _typed(content.get("parts"), list, "content parts") or []
    finish = _get(first, "finishReason", "finish_reason")
    return ApiResponse(
        parts=[_parse_part(raw, index) for index, raw in enumerate(raw_parts)],
        finish_reason=None if finish is None else str(finish),
        usage=_typed(_get(doc, "usageMetadata", "usage_metadata"), dict, "usageMetadata") or {},
        model_version=_typed(_get(doc, "modelVersion", "model_version"), str, "modelVersion"),
        response_id=_typed(_get(doc, "responseId", "response_id"), str, "responseId"),
        prompt_feedback=_typed(_get(doc, "promptFeedback", "prompt_feedback"), dict, "feedback"),
        candidate_count=len(candidates),
    )


def _trim(text: str, limit: int = MESSAGE_MAX_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _no_image_message(resp: ApiResponse, reason: str) -> str:
    if resp.candidate_count == 0:
        return "HTTP 200 without any candidate; the turn is retried a bounded number of times"
    said = " ".join(p.text for p in resp.parts if p.text and not p.thought)
    text = f", only text: {_trim(said, 200)!r}" if said else ""
    return (
        f"HTTP 200 without an image (finishReason {reason or 'absent'}){text}; the turn is "
        "retried a bounded number of times, then ask for the image explicitly in the prompt"
    )


def check_response(resp: ApiResponse) -> ReturnedPart:
    """The image part to keep; Blocked or NoImage when the answer has none usable."""
    feedback = resp.prompt_feedback or {}
    block = _get(feedback, "blockReason", "block_reason")
    if block is not None:
        raise Blocked(f"the prompt was blocked ({block}); reword the prompt", status=200)
    reason = (resp.finish_reason or "").upper()
    if reason in BLOCKING_FINISH_REASONS:
        raise Blocked(
            f"the model stopped with finishReason {reason} (safety or policy); reword the prompt",
            status=200,
        )
    # Thought parts hold interim images; the answer is any later non-thought image, not parts[0].
    images = [part for part in resp.parts if part.image and not part.thought]
    if reason in NO_IMAGE_FINISH_REASONS or not images:
        raise NoImage(_no_image_message(resp, reason), status=200)
    for part in images:
        if part.image and sniff_mime(part.image) is not None:
            return part
    raise MalformedResponse(
        f"HTTP 200 with image data that is not JPEG, PNG, GIF or WebP "
        f"(declared {images[0].returned_mime_type!r})",
        status=200,
    )


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
            delay = _duration_s(_get(detail, "retryDelay", "retry_delay"))
        violations = detail.get("violations")
        for violation in violations if isinstance(violations, list) else []:
            if isinstance(violation, dict):
                quota_id = str(_get(violation, "quotaId", "quota_id") or "")
                metric = str(_get(violation, "quotaMetric", "quota_metric") or "")
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
        return f"HTTP {status}: {_trim(text) or 'empty body'}"
    label = f"HTTP {status} {error['status']}" if error.get("status") else f"HTTP {status}"
    return f"{label}: {_trim(str(error.get('message') or 'no message'))}"


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


def _base64_forms(secret: str) -> set[str]:
    """The runs of base64 text that encode `secret` wherever it sits in an encoded echo.

    Base64 packs 3 bytes into 4 characters, so the key encodes differently at each of the 3
    byte offsets; at each, the characters made only of key bits are the same whatever bytes
    surround it. Standard and URL-safe alphabets both.
    """
    raw = secret.encode()
    forms: set[str] = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode()
        start, end = -(-8 * offset // 6), 8 * (offset + len(raw)) // 6
        inner = encoded[start:end]
        if len(inner) >= MIN_ENCODED_CHARS:
            forms |= {inner, inner.replace("+", "-").replace("/", "_")}
    return forms


def redact(text: str, secret: str | None) -> str:
    """`text` with every occurrence of `secret` (plain, URL-quoted or base64-encoded, as an
    error body may echo it) and any `key=` URL parameter blanked out."""
    if secret:
        forms = {secret, quote(secret, safe=""), *_base64_forms(secret)}
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, REDACTED)
    return _KEY_PARAM_RE.sub(rf"\1{REDACTED}", text)
