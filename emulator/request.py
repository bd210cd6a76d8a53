"""Parsing and validating a generateContent request the way the real API does."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

from emulator.errors import JsonDict, invalid_argument
from emulator.models import model_for
from emulator.signatures import Signer, decode_base64

ROLES = ("user", "model")
# GenerateContentRequest.serviceTier values (google-genai's ServiceTier enum).
SERVICE_TIERS = ("unspecified", "standard", "flex", "priority")


@dataclass(frozen=True)
class Part:
    """One part of a content: text or inline image bytes, maybe a thought, maybe signed."""

    text: str | None = None
    image: bytes | None = None
    mime_type: str | None = None
    thought: bool = False
    signature: str | None = None


@dataclass(frozen=True)
class Content:
    """One turn of the conversation."""

    role: str
    parts: tuple[Part, ...]


@dataclass(frozen=True)
class GenerateRequest:
    """A validated request: the model, the turns and the generation options that matter here."""

    model: str
    contents: tuple[Content, ...]
    aspect_ratio: str | None
    image_size: str | None
    include_thoughts: bool
    modalities: tuple[str, ...]
    service_tier: str = "standard"

    @property
    def last_user_text(self) -> str:
        """The text of the final user turn (the prompt of this edit)."""
        texts = [p.text for p in self.contents[-1].parts if p.text is not None and not p.thought]
        return "\n".join(texts)

    @property
    def source_image(self) -> bytes | None:
        """The last non-thought image anywhere in the request (model or user turn)."""
        for content in reversed(self.contents):
            for part in reversed(content.parts):
                if part.image is not None and not part.thought:
                    return part.image
        return None

    @property
    def image_count(self) -> int:
        """How many inline images the request carries."""
        return sum(1 for c in self.contents for p in c.parts if p.image is not None)

    @property
    def text_chars(self) -> int:
        """How many characters of text the request carries."""
        return sum(len(p.text or "") for c in self.contents for p in c.parts)


def _get(obj: JsonDict, camel: str, snake: str) -> Any:
    """A proto3-JSON field under either spelling."""
    return obj[camel] if camel in obj else obj.get(snake)


def load_json(body: bytes) -> JsonDict:
    """The request body as a JSON object, or 400 like Google's."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid_argument(f"Invalid JSON payload received. {type(exc).__name__}.") from exc
    if not isinstance(data, dict):
        raise invalid_argument(
            "Invalid JSON payload received. Expected an object at the top level."
        )
    return data


def _parse_inline(raw: JsonDict, where: str) -> tuple[bytes, str]:
    data = _get(raw, "data", "data")
    mime = _get(raw, "mimeType", "mime_type")
    if not isinstance(data, str) or not data:
        raise invalid_argument(
            f"* GenerateContentRequest.{where}.inline_data.data: required field."
        )
    try:
        return decode_base64(data), str(mime or "")
    except ValueError as exc:
        message = (
            f"Invalid value at '{where}.inline_data.data' (TYPE_BYTES), Base64 decoding failed."
        )
        raise invalid_argument(message) from exc


def _parse_part(raw: Any, where: str) -> Part:
    if not isinstance(raw, dict):
        raise invalid_argument(f"Invalid value at '{where}': expected a Part object.")
    inline = _get(raw, "inlineData", "inline_data")
    text = raw.get("text")
    if inline is None and not isinstance(text, str):
        raise invalid_argument(
            f"* GenerateContentRequest.{where}.data: required oneof field 'data' "
            "must have one initialized field"
        )
    image, mime = _parse_inline(inline, where) if isinstance(inline, dict) else (None, None)
    signature = _get(raw, "thoughtSignature", "thought_signature")
    return Part(
        text=text if isinstance(text, str) else None,
        image=image,
        mime_type=mime,
        thought=bool(raw.get("thought", False)),
        signature=signature if isinstance(signature, str) and signature else None,
    )


def _parse_content(raw: Any, index: int) -> Content:
    where = f"contents[{index}]"
    if not isinstance(raw, dict):
        raise invalid_argument(f"Invalid value at '{where}': expected a Content object.")
    role = raw.get("role") or "user"  # the API treats an empty role as the user
    if role not in ROLES:
        raise invalid_argument("Please use a valid role: user, model.")
    parts = raw.get("parts")
    if not isinstance(parts, list) or not parts:
        raise invalid_argument(
            f"* GenerateContentRequest.{where}.parts: contents.parts must not be empty."
        )
    return Content(role, tuple(_parse_part(p, f"{where}.parts[{i}]") for i, p in enumerate(parts)))


def _check_turn_order(contents: tuple[Content, ...]) -> None:
    if contents[0].role != "user":
        raise invalid_argument(
            "Please ensure that multiturn requests start with a user turn "
            "(content position 1 has role model)."
        )
    for position, (before, after) in enumerate(itertools.pairwise(contents), 2):
        if before.role == after.role:
            raise invalid_argument(
                "Please ensure that multiturn requests alternate between user "
                f"and model (content position {position} repeats role "
                f"{after.role})."
            )
    if contents[-1].role != "user":
        raise invalid_argument("Please ensure that the last content of a request has role user.")


def _check_image_config(model: str, config: JsonDict) -> tuple[str | None, str | None]:
    profile = model_for(model)
    image_config = _get(config, "imageConfig", "image_config") or {}
    aspect = _get(image_config, "aspectRatio", "aspect_ratio")
    size = _get(image_config, "imageSize", "image_size")
    if aspect is not None and aspect not in profile.aspect_ratios:
        raise invalid_argument(
            f"Unsupported aspect ratio {aspect!r} for model {model}. "
            f"Supported values: {', '.join(profile.aspect_ratios)}."
        )
    if size is not None and size not in profile.image_sizes:
        raise invalid_argument(
            f"Unsupported image size {size!r} for model {model}. "
            f"Supported values: {', '.join(profile.image_sizes)}."
        )
    return aspect, size


def _generation_options(model: str, config: JsonDict) -> tuple[bool, tuple[str, ...]]:
    count = _get(config, "candidateCount", "candidate_count")
    if count is not None and count != 1:
        raise invalid_argument(f"Multiple candidates is not enabled for models/{model}")
    thinking = _get(config, "thinkingConfig", "thinking_config") or {}
    include = bool(_get(thinking, "includeThoughts", "include_thoughts"))
    modalities = _get(config, "responseModalities", "response_modalities") or ["TEXT", "IMAGE"]
    return include, tuple(str(m).upper() for m in modalities)


def parse_request(model: str, body: JsonDict) -> GenerateRequest:
    """Validate the body of a generateContent call for `model`; ApiError(400) when invalid."""
    raw_contents = body.get("contents")
    if not isinstance(raw_contents, list) or not raw_contents:
        raise invalid_argument("* GenerateContentRequest.contents: contents is not specified")
    contents = tuple(_parse_content(c, i) for i, c in enumerate(raw_contents))
    _check_turn_order(contents)
    config = _get(body, "generationConfig", "generation_config") or {}
    if not isinstance(config, dict):
        raise invalid_argument("Invalid value at 'generation_config': expected an object.")
    aspect, size = _check_image_config(model, config)
    include, modalities = _generation_options(model, config)
    tier = _service_tier(body)
    return GenerateRequest(model, contents, aspect, size, include, modalities, tier)


def _service_tier(body: JsonDict) -> str:
    raw = _get(body, "serviceTier", "service_tier")
    tier = "standard" if raw is None else str(raw).lower()
    if tier not in SERVICE_TIERS:
        raise invalid_argument(
            f"Invalid value at 'service_tier': {raw!r}; use one of {', '.join(SERVICE_TIERS)}."
        )
    return "standard" if tier == "unspecified" else tier


def _signed_content(part: Part) -> tuple[str, bytes] | None:
    if part.image is not None:
        return "image", part.image
    if part.text is not None:
        return "text", part.text.encode()
    return None


def _must_be_signed(content: Content) -> list[int]:
    """0-based indexes of parts that the API itself signed: images and the first plain text."""
    required = [i for i, p in enumerate(content.parts) if p.image is not None and not p.thought]
    texts = [i for i, p in enumerate(content.parts) if p.text is not None and not p.thought]
    return sorted(required + texts[:1])


def check_signatures(request: GenerateRequest, signer: Signer) -> None:
    """Strict mode: every signed model part must come back with its own, untouched signature."""
    for c_index, content in enumerate(request.contents):
        if content.role != "model":
            continue
        required = _must_be_signed(content)
        for p_index, part in enumerate(content.parts):
            _check_part(
                request.model, signer, part, (c_index + 1, p_index + 1), p_index in required
            )


def _check_part(
    model: str, signer: Signer, part: Part, position: tuple[int, int], required: bool
) -> None:
    signed = _signed_content(part)
    kind = "Image" if part.image is not None else "Text"
    where = f"content position {position[0]}, part position {position[1]}."
    if part.signature is None:
        if required:
            raise invalid_argument(f"{kind} part is missing a thought_signature in {where}")
        return
    if signed is None or not signer.verify(model, signed[0], signed[1], part.signature):
        raise invalid_argument(f"Invalid thought signature in {where}")
