"""The Interactions API over HTTP (create and delete), and its answers read as an ApiResponse.

Wire shapes follow google-genai 3.x's generated types (`_gaos/types/interactions`), the best
specification at hand. Documented by Google: `POST /v1beta/interactions` with `model`, `input`,
`previous_interaction_id`, `response_format` `{type: image, aspect_ratio, image_size}` and
`service_tier`; the answer's `steps` (`thought` steps carry `signature`, `model_output` steps
carry text and image content) and `usage` (`total_input_tokens` ...). UNCONFIRMED, our reading:
the status a create gets when its previous interaction is expired, deleted or another key's (we
treat 404, 403 and a 400 naming previous_interaction_id as "gone"), and that a `failed` status
carries the finish reason as its first error's code.
"""

from __future__ import annotations

import binascii
import dataclasses
import json
from typing import Any, Protocol
from urllib.parse import quote

import pybase64

from shared.api_errors import classify_http_error
from shared.deadline import Deadline
from shared.errors import EditQueueError, InteractionGone, MalformedResponse
from shared.gemini import TRANSPORT_ERRORS, HttpGeminiClient, http_exchange
from shared.request_body import RequestBody
from shared.responses import ApiResponse, ReturnedPart

# Google's docs show /v1beta; google-genai 3.6 calls /v1/interactions. Either is served by the
# bundled emulator; which one the real service prefers long-term is not settled here.
INTERACTIONS_PATH = "/v1beta/interactions"
DELETE_TIMEOUT_S = 10.0
GONE_STATUSES = frozenset({403, 404})


class InteractionsClient(Protocol):
    """Create and delete interactions; raises editqueue errors only."""

    def create(self, body: RequestBody, *, chained: bool) -> ApiResponse:
        """The parsed answer with `interaction_id`; InteractionGone when `chained` and the
        previous interaction is gone."""
        ...

    def delete(self, interaction_id: str) -> None:
        """Delete one interaction (best effort: a missing one is not an error)."""
        ...


def _decode(data: Any, where: str) -> bytes:
    if not isinstance(data, str):
        raise MalformedResponse(f"HTTP 200 with no base64 data in {where}", status=200)
    try:
        data = data.replace("-", "+").replace("_", "/")
        return pybase64.b64decode(data + "=" * (-len(data) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedResponse(f"HTTP 200 with invalid base64 in {where}", status=200) from exc


def _content_parts(step: dict[str, Any], signature: str | None, at: int) -> list[ReturnedPart]:
    parts: list[ReturnedPart] = []
    for i, item in enumerate(step.get("content") or []):
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "text":
            parts.append(ReturnedPart(text=str(item.get("text", ""))))
        elif kind == "image":
            data = _decode(item.get("data"), f"step {at} content {i}")
            mime = item.get("mime_type")
            # The signature of the thought step before it is kept on the image, where replay
            # (generateContent or a seeded interaction) puts it back.
            parts.append(
                ReturnedPart(image=data, returned_mime_type=mime, thought_signature=signature)
            )
            signature = None
        elif isinstance(item, dict):
            parts.append(ReturnedPart(other={"content": item}))
    return parts


def _parts(steps: list[Any]) -> list[ReturnedPart]:
    parts: list[ReturnedPart] = []
    signature: str | None = None
    for at, step in enumerate(steps):
        if not isinstance(step, dict):
            raise MalformedResponse(f"HTTP 200 with step {at} not an object", status=200)
        if step.get("type") == "thought":
            signature = step.get("signature") or signature
            for item in step.get("summary") or []:
                if isinstance(item, dict) and item.get("type") == "text":
                    parts.append(ReturnedPart(text=str(item.get("text", "")), thought=True))
        elif step.get("type") == "model_output":
            parts.extend(_content_parts(step, signature, at))
            signature = None
    return parts


def usage_as_generate_content(usage: dict[str, Any]) -> dict[str, Any]:
    """Interactions `usage` under generateContent's names (what pricing and status read), the
    original kept beside them."""
    return {
        "promptTokenCount": usage.get("total_input_tokens", 0),
        "candidatesTokenCount": usage.get("total_output_tokens", 0),
        "thoughtsTokenCount": usage.get("total_thought_tokens", 0),
        "totalTokenCount": usage.get("total_tokens", 0),
        "interactions": usage,
    }


def _finish_reason(doc: dict[str, Any]) -> str:
    status = str(doc.get("status") or "")
    if status == "completed":
        return "STOP"
    errors = doc.get("errors") or []
    code = errors[0].get("code") if errors and isinstance(errors[0], dict) else None
    return str(code or status.upper() or "OTHER")


def parse_interaction(body: bytes | bytearray) -> ApiResponse:
    """A 200 create answer as an ApiResponse; MalformedResponse when it is not one."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise MalformedResponse(
            f"HTTP 200 with a body that is not JSON ({len(body)} bytes)", status=200
        ) from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
        raise MalformedResponse("HTTP 200 without an interaction id", status=200)
    steps = doc.get("steps") or []
    if not isinstance(steps, list):
        raise MalformedResponse("HTTP 200 with steps that are not a list", status=200)
    usage = doc.get("usage") if isinstance(doc.get("usage"), dict) else {}
    return ApiResponse(
        parts=_parts(steps),
        finish_reason=_finish_reason(doc),
        usage=usage_as_generate_content(usage or {}),
        model_version=doc.get("model") if isinstance(doc.get("model"), str) else None,
        response_id=doc["id"],
        interaction_id=doc["id"],
        interaction_created=doc.get("created") if isinstance(doc.get("created"), str) else None,
    )


def _is_gone(status: int, body: bytes | bytearray) -> bool:
    if status in GONE_STATUSES:
        return True
    return status == 400 and b"previous_interaction" in bytes(body[:4096]).lower()


class HttpInteractionsClient(HttpGeminiClient):
    """InteractionsClient over the same pooled session, deadline and error mapping as
    generateContent (key in a header, streamed body, one total deadline)."""

    def url_for(self, model: str) -> str:
        """The create URL (the model travels in the body)."""
        return self._base_url + INTERACTIONS_PATH

    def create(self, body: RequestBody, *, chained: bool) -> ApiResponse:
        """POST one interaction under the total deadline; raises our errors only."""
        deadline = Deadline(self._timeout_s)
        try:
            status, payload = self._exchange("", body, deadline)
        except EditQueueError:
            raise
        except TRANSPORT_ERRORS as exc:
            raise self._translate(exc, deadline) from exc
        if status != 200:
            error = classify_http_error(status, payload, secret=self._key)
            if chained and _is_gone(status, payload):
                raise InteractionGone(f"previous interaction is gone: {error}", status=status)
            raise error
        return dataclasses.replace(parse_interaction(payload), latency_s=deadline.elapsed())

    def delete(self, interaction_id: str) -> None:
        """DELETE one interaction; any failure is ignored (it expires anyway)."""
        url = f"{self._base_url}{INTERACTIONS_PATH}/{quote(interaction_id, safe='')}"
        try:
            http_exchange(
                self._session,
                "DELETE",
                url,
                headers=self._headers(),
                timeout_s=DELETE_TIMEOUT_S,
                secret=self._key,
            )
        except EditQueueError:
            return
