"""Building `contents` from stored turns: model turns replayed exactly as returned.

Image bytes are not loaded here: an image part holds a `BlobData` placeholder that the request
body writer (`worker/request_body.py`) streams as base64 from the local blob cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.catalog import (
    INLINE_REQUEST_LIMIT_BYTES,
    TEXT_CHARS_PER_TOKEN,
    USER_IMAGE_TOKENS,
    ModelProfile,
)
from shared.errors import HistoryTooLarge, fork_command, fork_then_append
from shared.session_records import SessionRecord
from shared.session_spec import HistoryPolicy
from shared.turn_records import ResultPart, TurnRequest, TurnResult

Content = dict[str, Any]
REANCHOR_KEEP_LAST = 2  # what the advice proposes; append then checks the fork's estimate


@dataclass(frozen=True)
class BlobData:
    """Placeholder for base64 image data: which blob, and how many raw bytes it holds."""

    sha256: str
    size_bytes: int


def replayed_turns(policy: HistoryPolicy, index: int) -> list[int]:
    """Which earlier turns turn `index` replays: all, or the first plus the last `keep_last`."""
    earlier = list(range(1, index))
    if policy.is_full or policy.keep_last is None or len(earlier) <= policy.keep_last + 1:
        return earlier
    return [1, *earlier[-policy.keep_last :]]


def user_content(request: TurnRequest) -> Content:
    """A user turn: the prompt, then its reference images."""
    parts: list[dict[str, Any]] = [{"text": request.prompt}]
    for image in request.images:
        parts.append({"inlineData": {"mimeType": image.mime_type, "data": _blob(image)}})
    return {"role": "user", "parts": parts}


def _blob(ref: Any) -> BlobData:
    return BlobData(sha256=ref.sha256, size_bytes=ref.size_bytes)


def model_part(part: ResultPart) -> dict[str, Any]:
    """One stored model part, rebuilt field by field as the API returned it."""
    out: dict[str, Any] = dict(part.other)
    if part.text is not None:
        out["text"] = part.text
    if part.image is not None:
        mime = part.returned_mime_type or part.image.mime_type
        out["inlineData"] = {"mimeType": mime, "data": _blob(part.image)}
    if part.thought:
        out["thought"] = True
    if part.thought_signature is not None:
        out["thoughtSignature"] = part.thought_signature
    return out


def model_content(result: TurnResult) -> Content:
    """A model turn, every part replayed verbatim (signatures included)."""
    return {"role": "model", "parts": [model_part(p) for p in result.parts]}


def build_contents(
    policy: HistoryPolicy,
    requests: dict[int, TurnRequest],
    results: dict[int, TurnResult],
    index: int,
) -> list[Content]:
    """The `contents` array for turn `index` under the session's history policy."""
    contents: list[Content] = []
    for earlier in replayed_turns(policy, index):
        contents.append(user_content(requests[earlier]))
        contents.append(model_content(results[earlier]))
    contents.append(user_content(requests[index]))
    return contents


def effective_size(record: SessionRecord, request: TurnRequest) -> tuple[str | None, str | None]:
    """The (aspect ratio, image size) turn n asks for: its overrides, else the session's."""
    return (request.aspect_ratio or record.aspect_ratio, request.image_size or record.image_size)


def generation_config(record: SessionRecord, request: TurnRequest) -> dict[str, Any]:
    """`generationConfig` with response modalities and the image config for this turn."""
    aspect_ratio, image_size = effective_size(record, request)
    image_config = {
        key: value
        for key, value in (("aspectRatio", aspect_ratio), ("imageSize", image_size))
        if value is not None
    }
    config: dict[str, Any] = {"responseModalities": ["TEXT", "IMAGE"]}
    if image_config:
        config["imageConfig"] = image_config
    return config


def request_payload(
    record: SessionRecord,
    requests: dict[int, TurnRequest],
    results: dict[int, TurnResult],
    index: int,
) -> dict[str, Any]:
    """The whole `generateContent` body for turn `index`, with blob placeholders."""
    return {
        "contents": build_contents(record.history, requests, results, index),
        "generationConfig": generation_config(record, requests[index]),
    }


def estimate_tokens(
    profile: ModelProfile,
    record: SessionRecord,
    requests: dict[int, TurnRequest],
    index: int,
) -> int:
    """Prompt tokens of turn `index` plus the image it will return, by the model's tables."""
    # The API's default when a call names no size is 1K.
    default_size = "1K" if "1K" in profile.image_sizes else profile.image_sizes[0]

    def image_tokens(n: int) -> int:
        size = effective_size(record, requests[n])[1] or default_size
        return profile.image_tokens.get(size, max(profile.image_tokens.values()))

    total = image_tokens(index)
    for earlier in [*replayed_turns(record.history, index), index]:
        request = requests[earlier]
        total += len(request.prompt) // TEXT_CHARS_PER_TOKEN + 1
        total += USER_IMAGE_TOKENS * len(request.images)
        if earlier != index:
            total += image_tokens(earlier)
    return total


def reanchor(sid: str, at: int, keep_last: int) -> str:
    """How a session that outgrew a limit continues: a fork at `at` that re-anchors its history."""
    policy = HistoryPolicy(anchor="first", keep_last=keep_last)
    fork = fork_command(sid, at, policy.spelling)
    return fork_then_append("continue in a fork that re-anchors", fork)


def check_fits(profile: ModelProfile, tokens: int, body_bytes: int, index: int, sid: str) -> None:
    """Refuse a call whose history outgrew the context window or the inline request limit."""
    # The keep_last a fork needs is estimated when its turn is appended (and named if 2 is
    # still too many): only the fork command is given here.
    todo = reanchor(sid, index - 1, REANCHOR_KEEP_LAST) if index > 1 else ""
    if tokens > profile.context_tokens:
        raise HistoryTooLarge(
            f"turn {index}: history needs ~{tokens} tokens, over {profile.model_id}'s "
            f"{profile.context_tokens}" + (f"; {todo}" if todo else "")
        )
    if body_bytes > INLINE_REQUEST_LIMIT_BYTES:
        raise HistoryTooLarge(
            f"turn {index}: request body is {body_bytes / 1e6:.1f} MB, over the "
            f"{INLINE_REQUEST_LIMIT_BYTES / 1e6:.1f} MB inline limit"
            + (f"; {todo}" if todo else "; use a smaller image_size or fewer reference images")
        )
