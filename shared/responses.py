"""A Gemini 200 answer parsed without I/O: the parts that came back, and the image to keep."""

from __future__ import annotations

import binascii
import json
from dataclasses import dataclass, field
from typing import Any

import pybase64

from shared.errors import Blocked, MalformedResponse, NoImage
from shared.images import sniff_mime

MESSAGE_MAX_CHARS = 300
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
_PART_KEYS = frozenset(
    {"text", "inlineData", "inline_data", "thought", "thoughtSignature", "thought_signature"}
)
_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")


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


def pick(obj: dict[str, Any], camel: str, snake: str) -> Any:
    """A field in either spelling (proto3 JSON allows both; gateways and Google's samples mix)."""
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
    inline = _typed(pick(raw, "inlineData", "inline_data"), dict, f"{where} inlineData")
    if inline is not None:
        mime = _typed(pick(inline, "mimeType", "mime_type"), str, f"{where} mimeType")
        # pop: the base64 text is released as soon as it is decoded, not kept beside the bytes
        data = _typed(inline.pop("data", None), str, f"{where} data") or ""
        image = _decode_base64(data, where)
    return ReturnedPart(
        text=_typed(raw.get("text"), str, f"{where} text"),
        image=image,
        returned_mime_type=mime,
        thought=bool(raw.get("thought", False)),
        thought_signature=_typed(
            pick(raw, "thoughtSignature", "thought_signature"), str, f"{where} thoughtSignature"
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
    finish = pick(first, "finishReason", "finish_reason")
    return ApiResponse(
        parts=[_parse_part(raw, index) for index, raw in enumerate(raw_parts)],
        finish_reason=None if finish is None else str(finish),
        usage=_typed(pick(doc, "usageMetadata", "usage_metadata"), dict, "usageMetadata") or {},
        model_version=_typed(pick(doc, "modelVersion", "model_version"), str, "modelVersion"),
        response_id=_typed(pick(doc, "responseId", "response_id"), str, "responseId"),
        prompt_feedback=_typed(pick(doc, "promptFeedback", "prompt_feedback"), dict, "feedback"),
        candidate_count=len(candidates),
    )


def trim_message(text: str, limit: int = MESSAGE_MAX_CHARS) -> str:
    """`text` on one line, cut to `limit` characters (marked `...` when cut)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _no_image_message(resp: ApiResponse, reason: str) -> str:
    if resp.candidate_count == 0:
        return "HTTP 200 without any candidate; the turn is retried a bounded number of times"
    said = " ".join(p.text for p in resp.parts if p.text and not p.thought)
    text = f", only text: {trim_message(said, 200)!r}" if said else ""
    return (
        f"HTTP 200 without an image (finishReason {reason or 'absent'}){text}; the turn is "
        "retried a bounded number of times, then ask for the image explicitly in the prompt"
    )


def check_response(resp: ApiResponse) -> ReturnedPart:
    """The image part to keep; Blocked or NoImage when the answer has none usable."""
    feedback = resp.prompt_feedback or {}
    block = pick(feedback, "blockReason", "block_reason")
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
