"""Interactions API steps <-> generateContent contents, so both routes share one pipeline.

Shapes follow google-genai 3.x's generated types (`_gaos/types/interactions`): an input is a
string, a content, a list of contents (one user turn) or a list of steps (`user_input`,
`model_output`, `thought`); content items are `{"type": "text", "text"}` or
`{"type": "image", "mime_type", "data"}`. Where a signature sits is this emulator's reading: the
SDK puts `signature` on `thought` steps only, so a model turn comes back as a `thought` step
carrying the image's signature followed by the `model_output` step, and a seeded history must
send them back in that order (strict mode checks it like a replayed generateContent part).
"""

from __future__ import annotations

from typing import Any

from emulator.errors import JsonDict, invalid_argument

CONTENT_TYPES = ("text", "image")
STEP_TYPES = ("user_input", "model_output", "thought")


def _part(item: Any, where: str) -> JsonDict:
    if not isinstance(item, dict) or item.get("type") not in CONTENT_TYPES:
        raise invalid_argument(
            f"Invalid value at '{where}': a content needs type one of {', '.join(CONTENT_TYPES)}."
        )
    if item["type"] == "text":
        if not isinstance(item.get("text"), str):
            raise invalid_argument(f"* Interaction.{where}.text: required field.")
        return {"text": item["text"]}
    if item.get("uri") is not None:
        raise invalid_argument(f"Invalid value at '{where}.uri': this emulator takes inline data.")
    return {"inlineData": {"mimeType": item.get("mime_type") or "", "data": item.get("data")}}


def _content(items: Any, where: str) -> list[JsonDict]:
    if not isinstance(items, list) or not items:
        raise invalid_argument(f"* Interaction.{where}: content must not be empty.")
    return [_part(item, f"{where}[{i}]") for i, item in enumerate(items)]


def _sign_image(parts: list[JsonDict], signature: str | None) -> None:
    if signature is None:
        return
    for part in parts:
        if "inlineData" in part:
            part["thoughtSignature"] = signature
            return


def _steps_to_contents(steps: list[Any]) -> list[JsonDict]:
    contents: list[JsonDict] = []
    pending: str | None = None
    for i, step in enumerate(steps):
        kind = step.get("type") if isinstance(step, dict) else None
        if kind not in STEP_TYPES:
            raise invalid_argument(
                f"Invalid value at 'input[{i}].type': use one of {', '.join(STEP_TYPES)}."
            )
        if kind == "thought":
            signature = step.get("signature")
            pending = signature if isinstance(signature, str) and signature else None
            continue
        parts = _content(step.get("content"), f"input[{i}].content")
        if kind == "model_output":
            _sign_image(parts, pending)
            # Interactions carry signatures on thought steps only, bound here to the image: a
            # model's text goes to the pipeline unsigned, marked so strict mode does not ask.
            parts = [{**p, "thought": True} if "text" in p else p for p in parts]
        pending = None
        contents.append({"role": "user" if kind == "user_input" else "model", "parts": parts})
    return contents


def input_contents(raw: Any) -> list[JsonDict]:
    """The request's `input` as generateContent contents; 400 when it has none or is malformed."""
    if isinstance(raw, str) and raw:
        return [{"role": "user", "parts": [{"text": raw}]}]
    if isinstance(raw, dict):
        return [{"role": "user", "parts": [_part(raw, "input")]}]
    if isinstance(raw, list) and raw and all(isinstance(x, dict) for x in raw):
        if all(x.get("type") in STEP_TYPES for x in raw):
            return _steps_to_contents(raw)
        return [{"role": "user", "parts": _content(raw, "input")}]
    raise invalid_argument("* Interaction.input: input is not specified or not valid.")


def output_steps(candidate_parts: list[JsonDict]) -> list[JsonDict]:
    """A model turn's generateContent parts as steps: a signed thought, then the output."""
    steps: list[JsonDict] = []
    content: list[JsonDict] = []
    for part in candidate_parts:
        if part.get("thought"):
            steps.append({"type": "thought", "summary": [{"type": "text", "text": part["text"]}]})
            continue
        inline = part.get("inlineData")
        if inline is not None:
            if part.get("thoughtSignature"):
                steps.append({"type": "thought", "signature": part["thoughtSignature"]})
            content.append(
                {"type": "image", "mime_type": inline["mimeType"], "data": inline["data"]}
            )
        elif "text" in part:
            content.append({"type": "text", "text": part["text"]})
    if content:
        steps.append({"type": "model_output", "content": content})
    return steps


def usage_of(metadata: JsonDict) -> JsonDict:
    """generateContent usageMetadata in the Interactions `Usage` shape."""

    def by_modality(details: Any) -> list[JsonDict]:
        return [
            {"modality": str(d.get("modality", "")).lower(), "tokens": d.get("tokenCount", 0)}
            for d in details or []
        ]

    return {
        "total_input_tokens": metadata.get("promptTokenCount", 0),
        "total_output_tokens": metadata.get("candidatesTokenCount", 0),
        "total_thought_tokens": metadata.get("thoughtsTokenCount", 0),
        "total_tokens": metadata.get("totalTokenCount", 0),
        "input_tokens_by_modality": by_modality(metadata.get("promptTokensDetails")),
        "output_tokens_by_modality": by_modality(metadata.get("candidatesTokensDetails")),
    }
