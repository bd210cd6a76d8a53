"""Building generateContent response bodies: success, and the 200-shaped content faults."""

from __future__ import annotations

import base64
import hashlib
import secrets

from emulator.errors import JsonDict
from emulator.imaging import GeneratedImage
from emulator.models import CHARS_PER_TOKEN, INPUT_IMAGE_TOKENS, model_for
from emulator.request import GenerateRequest
from emulator.signatures import Signer

BASE_THOUGHT_TOKENS = 64
_SAFETY_RATINGS = [
    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "MEDIUM"},
]


def _text_tokens(chars: int) -> int:
    return -(-chars // CHARS_PER_TOKEN)


def image_tokens(request: GenerateRequest) -> int:
    """Output tokens one generated image costs for this model and size (catalog table)."""
    profile = model_for(request.model)
    return profile.image_tokens.get(request.image_size or "1K", INPUT_IMAGE_TOKENS)


def thought_tokens(request: GenerateRequest) -> int:
    """A stable, prompt-dependent thinking-token count (the real API reports 50-350)."""
    digest = hashlib.sha256(request.last_user_text.encode()).digest()
    return BASE_THOUGHT_TOKENS + digest[0]


def usage(request: GenerateRequest, out_text: str, images_out: int) -> JsonDict:
    """usageMetadata: prompt text+image tokens, per-size image tokens out, thoughts."""
    prompt_text = _text_tokens(request.text_chars)
    prompt_images = INPUT_IMAGE_TOKENS * request.image_count
    out_images = image_tokens(request) * images_out
    candidates = out_images + _text_tokens(len(out_text))
    thoughts = thought_tokens(request)
    prompt_details = [{"modality": "TEXT", "tokenCount": prompt_text}]
    if prompt_images:
        prompt_details.append({"modality": "IMAGE", "tokenCount": prompt_images})
    out_details = (
        [{"modality": "IMAGE", "tokenCount": out_images}]
        if images_out
        else [{"modality": "TEXT", "tokenCount": candidates}]
    )
    return {
        "promptTokenCount": prompt_text + prompt_images,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt_text + prompt_images + candidates + thoughts,
        "thoughtsTokenCount": thoughts,
        "promptTokensDetails": prompt_details,
        "candidatesTokensDetails": out_details,
    }


def _envelope(request: GenerateRequest, body: JsonDict, out_text: str, images: int) -> JsonDict:
    body["usageMetadata"] = usage(request, out_text, images)
    body["modelVersion"] = request.model.removeprefix("models/")
    body["responseId"] = secrets.token_urlsafe(16)
    return body


def _text_part(request: GenerateRequest, signer: Signer, text: str) -> JsonDict:
    return {"text": text, "thoughtSignature": signer.sign(request.model, "text", text.encode())}


def _thought_part(request: GenerateRequest) -> JsonDict:
    text = f"**Planning the edit**\n\nI will apply {request.last_user_text[:80]!r} to the scene."
    return {"text": text, "thought": True}


def success_body(
    request: GenerateRequest, image: GeneratedImage | None, signer: Signer, declared_mime: str
) -> JsonDict:
    """A normal reply: optional thought, signed text (if TEXT asked), signed image."""
    parts: list[JsonDict] = [_thought_part(request)] if request.include_thoughts else []
    text = ""
    if "TEXT" in request.modalities or image is None:
        turn = f" (turn {image.generation})" if image is not None else ""
        text = f"Here is the edited image{turn}."
        parts.append(_text_part(request, signer, text))
    if image is not None:
        parts.append(
            {
                "inlineData": {
                    "mimeType": declared_mime,
                    "data": base64.b64encode(image.data).decode("ascii"),
                },
                "thoughtSignature": signer.sign(request.model, "image", image.data),
            }
        )
    candidate = {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
    return _envelope(request, {"candidates": [candidate]}, text, 1 if image is not None else 0)


def content_fault_body(name: str, request: GenerateRequest, signer: Signer) -> JsonDict:
    """A 200 reply that carries no usable image: blocked, safety-stopped, text-only, empty."""
    if name == "blocked":
        feedback = {"blockReason": "SAFETY", "safetyRatings": _SAFETY_RATINGS}
        return _envelope(request, {"promptFeedback": feedback}, "", 0)
    if name == "nocandidate":
        return _envelope(request, {}, "", 0)
    if name in ("image_safety", "prohibited"):
        reason = "IMAGE_SAFETY" if name == "image_safety" else "IMAGE_PROHIBITED_CONTENT"
        message = (
            "Unable to show the generated image. The image was filtered out because it "
            "violated Google's Generative AI Prohibited Use policy."
        )
        candidate: JsonDict = {"finishReason": reason, "finishMessage": message, "index": 0}
        return _envelope(request, {"candidates": [candidate]}, "", 0)
    text = (
        "I'm unable to make that edit to the image."
        if name == "noimage"
        else "Sure! Here is your room with the requested change."
    )
    parts = [_text_part(request, signer, text)]
    candidate = {
        "content": {"role": "model", "parts": parts},
        "finishReason": "NO_IMAGE" if name == "noimage" else "STOP",
        "index": 0,
    }
    return _envelope(request, {"candidates": [candidate]}, text, 0)
