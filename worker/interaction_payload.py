"""Interactions API request bodies from stored turns: the new input alone on a live chain, or a
new interaction seeded with the history replayed from S3.

Image bytes are `BlobData` placeholders, streamed by `worker/request_body.py` as for
generateContent. Documented by Google: only the conversation carries over a chain, so
`response_format`, `response_modalities` and `service_tier` are sent on every turn.
UNCONFIRMED, our reading: a seeded history may mix turns first answered by generateContent; the
signature stored on a model image is sent back as a `thought` step just before its
`model_output` step (the SDK puts `signature` on thought steps only), and text parts go back
without their generateContent signatures.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared.history import BlobData, effective_size, replayed_turns
from shared.session_records import SessionRecord
from shared.turn_records import ResultPart, TurnRequest, TurnResult

Step = dict[str, Any]


def _image(mime: str, ref: Any) -> dict[str, Any]:
    return {"type": "image", "mime_type": mime, "data": BlobData(ref.sha256, ref.size_bytes)}


def user_step(request: TurnRequest) -> Step:
    """A user turn: the prompt, then its reference images."""
    content: list[dict[str, Any]] = [{"type": "text", "text": request.prompt}]
    content.extend(_image(ref.mime_type, ref) for ref in request.images)
    return {"type": "user_input", "content": content}


def _output(part: ResultPart) -> dict[str, Any] | None:
    if part.image is not None:
        return _image(part.returned_mime_type or part.image.mime_type, part.image)
    if part.text is not None and not part.thought:
        return {"type": "text", "text": part.text}
    return part.other.get("content") if isinstance(part.other.get("content"), dict) else None


def model_steps(result: TurnResult) -> list[Step]:
    """A committed model turn: the image's signature as a thought step, then its output."""
    steps: list[Step] = []
    signed = [p for p in result.parts if p.image is not None and p.thought_signature]
    if signed:
        steps.append({"type": "thought", "signature": signed[0].thought_signature})
    content = [c for c in (_output(p) for p in result.parts if not p.thought) if c is not None]
    steps.append({"type": "model_output", "content": content})
    return steps


def _common(record: SessionRecord, request: TurnRequest, lane: str) -> dict[str, Any]:
    aspect_ratio, image_size = effective_size(record, request)
    image_format: dict[str, Any] = {"type": "image"}
    if aspect_ratio is not None:
        image_format["aspect_ratio"] = aspect_ratio
    if image_size is not None:
        image_format["image_size"] = image_size
    body: dict[str, Any] = {
        "model": record.model,
        "response_modalities": ["text", "image"],
        "response_format": image_format,
    }
    if lane == "flex":
        body["service_tier"] = "flex"
    return body


def chained_payload(
    record: SessionRecord, request: TurnRequest, previous_id: str, lane: str
) -> dict[str, Any]:
    """Turn n on a live chain: only its own input, after `previous_id` (turn n-1's answer)."""
    return {
        **_common(record, request, lane),
        "input": [user_step(request)],
        "previous_interaction_id": previous_id,
    }


def seeded_payload(
    record: SessionRecord,
    requests: dict[int, TurnRequest],
    results: dict[int, TurnResult],
    index: int,
    lane: str,
) -> dict[str, Any]:
    """Turn n as a new interaction carrying its history (the session's history policy)."""
    steps: list[Step] = []
    for earlier in replayed_turns(record.history, index):
        steps.append(user_step(requests[earlier]))
        steps.extend(model_steps(results[earlier]))
    steps.append(user_step(requests[index]))
    return {**_common(record, requests[index], lane), "input": steps}


def expires_at(created: str | None, committed_at: datetime, retention_s: float) -> datetime:
    """When a stored interaction is deleted: its `created` time (else the commit time) plus the
    retention. UNCONFIRMED that retention counts from creation rather than from last use."""
    start = committed_at
    if created:
        try:
            start = datetime.fromisoformat(created.replace("Z", "+00:00"))
        except ValueError:
            start = committed_at
    return start + timedelta(seconds=retention_s)


def chain_alive(result: TurnResult | None, now: datetime) -> bool:
    """True when turn n-1's answer has an interaction we expect the server still to hold."""
    if result is None or result.interaction_id is None:
        return False
    return result.interaction_expires_at is None or result.interaction_expires_at > now
