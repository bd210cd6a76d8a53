"""Request builders and response readers shared by the emulator tests."""

from __future__ import annotations

import base64
import io
import re
import uuid
from typing import Any

import requests
from PIL import Image

NB2 = "gemini-3.1-flash-image"
PRO = "gemini-3-pro-image"
KEY = "test-key"
Json = dict[str, Any]


def unique(text: str) -> str:
    """Prompt text no other test uses, so per-text trigger counters start at zero."""
    return f"{text} [{uuid.uuid4().hex[:8]}]"


def user(text: str, *images: bytes) -> Json:
    """A user turn with text and optional reference images (standard base64)."""
    parts: list[Json] = [{"text": text}]
    for data in images:
        parts.append(
            {"inlineData": {"mimeType": "image/jpeg", "data": base64.b64encode(data).decode()}}
        )
    return {"role": "user", "parts": parts}


def request_body(
    contents: list[Json], aspect: str | None = None, size: str | None = None, **generation: Any
) -> Json:
    """A generateContent body with optional imageConfig."""
    image_config = {k: v for k, v in (("aspectRatio", aspect), ("imageSize", size)) if v}
    config: Json = {"responseModalities": ["TEXT", "IMAGE"], **generation}
    if image_config:
        config["imageConfig"] = image_config
    return {"contents": contents, "generationConfig": config}


def generate(
    url: str,
    body: Json | bytes,
    *,
    model: str = NB2,
    key: str | None = KEY,
    version: str = "v1beta",
    timeout: float = 20,
) -> requests.Response:
    """POST a generateContent call to the emulator."""
    headers = {"x-goog-api-key": key} if key else {}
    endpoint = f"{url}/{version}/models/{model}:generateContent"
    if isinstance(body, bytes):
        headers["Content-Type"] = "application/json"
        return requests.post(endpoint, data=body, headers=headers, timeout=timeout)
    return requests.post(endpoint, json=body, headers=headers, timeout=timeout)


def model_turn(reply: Json) -> Json:
    """The model content of a reply, to replay verbatim as history."""
    content: Json = reply["candidates"][0]["content"]
    return content


def image_part(reply: Json) -> Json:
    """The (single) non-thought image part of a reply."""
    parts = [p for p in model_turn(reply)["parts"] if "inlineData" in p and not p.get("thought")]
    assert len(parts) == 1, parts
    part: Json = parts[0]
    return part


def image_bytes(reply: Json) -> bytes:
    """Decoded bytes of the reply's image."""
    return base64.b64decode(image_part(reply)["inlineData"]["data"])


def lineage(data: bytes) -> tuple[int, str]:
    """(generation, parent) from the image's comment."""
    with Image.open(io.BytesIO(data)) as image:
        raw = image.info.get("comment") or image.info.get("Comment") or b""
    text = raw.decode() if isinstance(raw, bytes) else raw
    match = re.fullmatch(r"editqueue-emulator generation=(\d+) parent=(\w+)", text)
    assert match, text
    return int(match.group(1)), match.group(2)


def size_of(data: bytes) -> tuple[int, int]:
    """Pixel size of image bytes."""
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def jpeg(width: int, height: int, colour: tuple[int, int, int] = (120, 140, 160)) -> bytes:
    """A plain JPEG with no emulator comment (a user's photo)."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def error_of(response: requests.Response) -> Json:
    """The `error` object of a Google-shaped error reply."""
    error: Json = response.json()["error"]
    assert error["code"] == response.status_code
    return error
