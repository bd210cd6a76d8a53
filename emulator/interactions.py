"""The Interactions API with server-side state: create, get, delete and cancel.

A create call is answered by the generateContent pipeline (`EmulatorApp.generate`) over the
stored conversation plus the new input, so images, signatures, strict checks, faults and usage
are exactly those of generateContent. Documented by Google: conversation history (inputs and
outputs) carries over through `previous_interaction_id`; `generation_config`/`response_format`
are per interaction; stored interactions are deleted after a retention period (55 days paid,
1 day free) or by `delete`. This emulator's reading (UNCONFIRMED against the real service): an
unknown, expired, deleted or other key's previous id is a 404 NOT_FOUND; non-STOP stops become
`status: failed` with the finish reason as the error code.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from emulator.errors import ApiError, JsonDict, invalid_argument
from emulator.interaction_steps import input_contents, output_steps, usage_of
from emulator.request import load_json

Generate = Callable[[str, bytes], Any]  # EmulatorApp.generate: (model, body) -> Reply


@dataclass
class Stored:
    """One interaction as the server keeps it: who owns it, its conversation and its answer."""

    key_hash: str
    model: str
    contents: list[JsonDict]  # the whole conversation through this interaction's output
    created_at: float
    answer: JsonDict = field(default_factory=dict)
    cancelled: bool = False


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def gone(interaction_id: str) -> ApiError:
    """The 404 for an interaction that is unknown, expired, deleted or another key's."""
    return ApiError(404, "NOT_FOUND", f"Interaction {interaction_id!r} was not found.")


class InteractionStore:
    """Thread-safe interactions by id, forgotten `ttl_s` after they were created."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.time) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._items: dict[str, Stored] = {}

    def now(self) -> float:
        """The store's clock."""
        return self._clock()

    def put(self, interaction_id: str, item: Stored) -> None:
        """Keep (or replace) an interaction."""
        with self._lock:
            self._items[interaction_id] = item

    def get(self, interaction_id: str, key: str) -> Stored:
        """The live interaction owned by `key`; 404 otherwise (expired ones are dropped)."""
        with self._lock:
            item = self._items.get(interaction_id)
            if item is not None and self._clock() - item.created_at > self.ttl_s:
                del self._items[interaction_id]
                item = None
        if item is None or item.key_hash != _key_hash(key):
            raise gone(interaction_id)
        return item

    def delete(self, interaction_id: str, key: str) -> None:
        """Forget one interaction; 404 when it is not there."""
        self.get(interaction_id, key)
        with self._lock:
            self._items.pop(interaction_id, None)

    def count(self) -> int:
        """How many interactions are held (expired ones included until touched)."""
        with self._lock:
            return len(self._items)


def _image_format(raw: Any) -> JsonDict:
    formats = raw if isinstance(raw, list) else [raw] if isinstance(raw, dict) else []
    found = [f for f in formats if isinstance(f, dict) and f.get("type") == "image"]
    if raw is not None and not formats:
        raise invalid_argument("Invalid value at 'response_format': expected an object or list.")
    return found[0] if found else {}


def generate_body(request: JsonDict, contents: list[JsonDict]) -> JsonDict:
    """The generateContent body equivalent to one create call over `contents`."""
    image = _image_format(request.get("response_format"))
    config: JsonDict = {}
    image_config = {
        out: image[key]
        for key, out in (("aspect_ratio", "aspectRatio"), ("image_size", "imageSize"))
        if image.get(key) is not None
    }
    if image_config:
        config["imageConfig"] = image_config
    modalities = request.get("response_modalities")
    if modalities is not None:
        if not isinstance(modalities, list):
            raise invalid_argument("Invalid value at 'response_modalities': expected a list.")
        config["responseModalities"] = [str(m).upper() for m in modalities]
    body: JsonDict = {"contents": contents, "generationConfig": config}
    if request.get("service_tier") is not None:
        body["serviceTier"] = request["service_tier"]
    return body


def count_images(contents: list[JsonDict]) -> int:
    """Inline images in a list of contents."""
    return sum(1 for c in contents for p in c["parts"] if "inlineData" in p)


@dataclass(frozen=True)
class Created:
    """A create call's outcome before HTTP: the generateContent reply and the new id."""

    reply: Any  # emulator.app.Reply, its body already in the Interactions shape when 200
    interaction_id: str | None
    images_in: int
    model: str


class InteractionsService:
    """Create/get/delete/cancel over an InteractionStore and the generateContent pipeline."""

    def __init__(self, store: InteractionStore, generate: Generate) -> None:
        self.store = store
        self._generate = generate

    def create(self, body: bytes, key: str) -> Created:
        """Run one interaction; raises ApiError for a request refused before generation."""
        request = load_json(body)
        model = request.get("model")
        if not isinstance(model, str) or not model:
            raise invalid_argument(
                "* Interaction.model: model is required for a model interaction."
            )
        model = model.removeprefix("models/")
        history: list[JsonDict] = []
        previous = request.get("previous_interaction_id")
        if previous is not None:
            stored = self.store.get(str(previous), key)
            if stored.model != model:
                raise invalid_argument(
                    f"previous_interaction_id {previous!r} was made with model {stored.model}; "
                    f"this interaction asks for {model}."
                )
            history = stored.contents
        new_input = input_contents(request.get("input"))
        contents = [*history, *new_input]
        interaction_id = "v1_" + secrets.token_urlsafe(18)
        item = Stored(_key_hash(key), model, contents, self.store.now())
        keep = request.get("store", True) is not False
        if keep:
            self.store.put(interaction_id, item)  # visible (in progress) while it generates
        reply = self._generate(model, json.dumps(generate_body(request, contents)).encode())
        answer = self._answer(reply, item, interaction_id, request)
        if answer is None:
            if keep:
                self._drop(interaction_id, key)
            return Created(reply, None, count_images(new_input), model)
        item.answer = answer
        body_out = json.dumps(answer, separators=(",", ":")).encode()
        return Created(
            replace(reply, body=body_out), interaction_id, count_images(new_input), model
        )

    def _drop(self, interaction_id: str, key: str) -> None:
        with contextlib.suppress(ApiError):
            self.store.delete(interaction_id, key)

    def _answer(
        self, reply: Any, item: Stored, interaction_id: str, request: JsonDict
    ) -> JsonDict | None:
        if reply.status != 200:
            return None
        try:
            answer = json.loads(reply.body)
        except ValueError:
            return None  # the HTML faults go out as generateContent would send them
        candidate = (answer.get("candidates") or [{}])[0]
        parts = (candidate.get("content") or {}).get("parts") or []
        reason = candidate.get("finishReason")
        doc: JsonDict = {
            "id": interaction_id,
            "object": "interaction",
            "model": item.model,
            "created": _iso(item.created_at),
            "updated": _iso(self.store.now()),
            "status": "completed",
            "steps": output_steps(parts),
            "usage": usage_of(answer.get("usageMetadata") or {}),
        }
        if request.get("previous_interaction_id") is not None:
            doc["previous_interaction_id"] = request["previous_interaction_id"]
        if item.cancelled:
            doc.update(status="cancelled", steps=[])
        elif reason != "STOP" or not parts:
            blocked = (answer.get("promptFeedback") or {}).get("blockReason")
            code = reason or blocked or "OTHER"
            message = candidate.get("finishMessage") or f"generation stopped: {code}"
            doc.update(status="failed", errors=[{"code": code, "message": message}])
        else:
            item.contents = [*item.contents, {"role": "model", "parts": parts}]
        return doc

    def get(self, interaction_id: str, key: str) -> JsonDict:
        """A stored interaction as the API returns it (in progress while it generates)."""
        item = self.store.get(interaction_id, key)
        if item.answer:
            return item.answer
        status = "cancelled" if item.cancelled else "in_progress"
        return {"id": interaction_id, "model": item.model, "status": status}

    def cancel(self, interaction_id: str, key: str) -> JsonDict:
        """Cancel one that is still generating; a finished one is returned unchanged."""
        item = self.store.get(interaction_id, key)
        if not item.answer:
            item.cancelled = True
        return self.get(interaction_id, key)
