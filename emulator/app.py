"""The emulated service, free of HTTP: a generateContent call in, a Reply to send out."""

from __future__ import annotations

import json
import random
import threading
from dataclasses import dataclass, replace
from typing import Literal

from emulator.batch_api import BatchApi
from emulator.batches import BatchService
from emulator.config import EmulatorConfig
from emulator.errors import ApiError, JsonDict, invalid_argument, key_invalid, key_missing
from emulator.faults import (
    CONTENT_FAULTS,
    ERROR_FAULTS,
    FAST_FAULTS,
    HTML_502,
    FaultPlan,
    fault_error,
)
from emulator.files import FileStore
from emulator.image_faults import IMAGE_FAULTS
from emulator.imaging import Target, UnreadableImage, derive_image
from emulator.interactions import InteractionsService, InteractionStore
from emulator.models import model_for
from emulator.request import GenerateRequest, check_signatures, load_json, parse_request
from emulator.response import content_fault_body, success_body
from emulator.signatures import Signer, secret_for
from emulator.stats import OUTCOME_OK, Stats

JSON_TYPE = "application/json; charset=UTF-8"
SERVICE_NAME = "editqueue-emulator"
HTML_TYPE = "text/html; charset=UTF-8"
Mode = Literal["normal", "hang", "drip", "truncated"]
FLEX_SHED = "The service is currently unavailable for the flex tier. Please retry later."
UNREADABLE_IMAGE = (
    "Unable to process input image. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting"
)


@dataclass(frozen=True)
class Reply:
    """What the HTTP layer must send, how (normal, hang, drip, truncated) and after what delay."""

    status: int
    body: bytes
    outcome: str
    content_type: str = JSON_TYPE
    mode: Mode = "normal"
    delay_s: float = 0.0
    generation: int | None = None
    tier: str = "standard"  # the service tier the call asked for
    images_in: int | None = None  # inline images in the request's new input (interactions)
    model: str = ""  # the model an interaction named (its route has none in the path)


def json_bytes(body: JsonDict) -> bytes:
    """Compact UTF-8 JSON."""
    return json.dumps(body, separators=(",", ":")).encode()


def error_reply(error: ApiError, outcome: str, delay_s: float = 0.0) -> Reply:
    """A Google-shaped JSON error reply."""
    return Reply(error.code, json_bytes(error.body()), outcome, delay_s=delay_s)


class EmulatorApp:
    """Validation, signing, faults, image derivation and call statistics for one server."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.signer = Signer(secret_for(config.seed, config.signature_secret))
        self.stats = Stats()
        self.stopping = threading.Event()
        self._rng = random.Random(config.seed)
        self._rng_lock = threading.Lock()
        self.faults = FaultPlan(dict(config.fault_rates), random.Random(self._roll_seed()))
        self.files = FileStore()
        self.batches = BatchService(
            self.files, self.run_line, config.batch_turnaround_s, config.batch_expire_jobs
        )
        self.batch_api = BatchApi(self.files, self.batches)
        store = InteractionStore(config.interaction_ttl_s)
        self.interactions = InteractionsService(store, self.generate)

    def _roll_seed(self) -> int:
        with self._rng_lock:
            return self._rng.getrandbits(64)

    def _roll(self) -> float:
        with self._rng_lock:
            return self._rng.random()

    def latency_s(self, tier: str = "standard") -> float:
        """Mean latency plus uniform jitter (plus the flex tier's extra), never negative."""
        jitter = self.config.latency_jitter_s * (2.0 * self._roll() - 1.0)
        extra = self.config.flex_latency_s if tier == "flex" else 0.0
        return max(0.0, self.config.latency_s + jitter) + extra

    def too_large(self) -> Reply:
        """The 400 for a body over the configured limit."""
        limit = self.config.max_request_bytes
        message = f"Request payload size exceeds the limit: {limit} bytes."
        return error_reply(invalid_argument(message), "too_large")

    def identity(self) -> JsonDict:
        """Who answers: lets a worker without a key tell this emulator from a real gateway."""
        return {"service": SERVICE_NAME, "accepts_any_key": self.config.api_key is None}

    def check_key(self, key: str | None) -> Reply | None:
        """An auth error reply, or None when the key is acceptable (never echoes the key)."""
        if not key:
            return error_reply(key_missing(), "auth")
        if self.config.api_key is not None and key != self.config.api_key:
            return error_reply(key_invalid(), "auth")
        return None

    def generate(self, model: str, body: bytes) -> Reply:
        """Validate, pick a fault, and build the reply to one generateContent call."""
        try:
            request = parse_request(model, load_json(body))
            if self.config.strict:
                check_signatures(request, self.signer)
            fault = self.faults.choose(request.last_user_text)
        except ApiError as error:
            return error_reply(error, "invalid")
        if request.service_tier == "flex" and self._roll() < self.config.flex_shed_rate:
            shed = ApiError(503, "UNAVAILABLE", FLEX_SHED)
            return replace(error_reply(shed, "flex_shed", self.config.flex_latency_s), tier="flex")
        if fault is None:
            return self._success(request, "normal", OUTCOME_OK)
        return self._fault(request, fault)

    def _fault(self, request: GenerateRequest, name: str) -> Reply:
        outcome = f"fault:{name}"
        if name in ERROR_FAULTS:
            error = fault_error(name, request.model, self.config.retry_delay_s)
            return error_reply(error, outcome, 0.0 if name in FAST_FAULTS else self.latency_s())
        if name in CONTENT_FAULTS:
            body = json_bytes(content_fault_body(name, request, self.signer))
            return Reply(200, body, outcome, delay_s=self.latency_s())
        if name in ("502", "notjson"):
            # A 502 comes from Google's front end as HTML; `notjson` is the nastier 200 + HTML.
            status = 502 if name == "502" else 200
            return Reply(status, HTML_502.encode(), outcome, HTML_TYPE, delay_s=self.latency_s())
        if name in IMAGE_FAULTS:
            return self._success(request, "normal", outcome, image_fault=name)
        if name == "hang":
            return Reply(0, b"", outcome, mode="hang")
        mode: Mode = "drip" if name == "drip" else "truncated"
        return self._success(request, mode, outcome)

    def _success(
        self, request: GenerateRequest, mode: Mode, outcome: str, image_fault: str | None = None
    ) -> Reply:
        image = None
        if "IMAGE" in request.modalities:
            target = Target(
                model_for(request.model),
                request.aspect_ratio,
                request.image_size,
                self.config.image_format,
                self.config.jpeg_quality,
            )
            try:
                image = derive_image(
                    request.source_image, request.last_user_text, target, image_fault
                )
            except UnreadableImage:
                return error_reply(invalid_argument(UNREADABLE_IMAGE), "invalid")
        declared = image.mime_type if image is not None else ""
        if declared == "image/jpeg" and self._roll() < self.config.mime_lie_rate:
            declared = "image/png"  # the real API sometimes labels JPEG bytes as PNG
        body = json_bytes(success_body(request, image, self.signer, declared))
        generation = image.generation if image is not None else None
        delay = self.latency_s(request.service_tier)
        return Reply(
            200,
            body,
            outcome,
            mode=mode,
            delay_s=delay,
            generation=generation,
            tier=request.service_tier,
        )

    def create_interaction(self, body: bytes, key: str) -> Reply:
        """One Interactions API create call, answered by the generateContent pipeline."""
        try:
            created = self.interactions.create(body, key)
        except ApiError as error:
            return error_reply(error, "invalid")
        reply: Reply = created.reply
        return replace(reply, images_in=created.images_in, model=created.model)

    def interaction_call(self, method: str, interaction_id: str, cancel: bool, key: str) -> Reply:
        """GET, DELETE or cancel one stored interaction."""
        try:
            if method == "DELETE" and not cancel:
                self.interactions.store.delete(interaction_id, key)
                return Reply(200, b"{}", "ok")
            if method == "POST" and cancel:
                return Reply(200, json_bytes(self.interactions.cancel(interaction_id, key)), "ok")
            if method == "GET" and not cancel:
                return Reply(200, json_bytes(self.interactions.get(interaction_id, key)), "ok")
        except ApiError as error:
            return error_reply(error, "not_found")
        return error_reply(ApiError(405, "INVALID_ARGUMENT", "Method not allowed."), "invalid")

    def run_line(self, model: str, body: bytes) -> tuple[int, JsonDict]:
        """One batch line through the generateContent pipeline: (status, answer or error)."""
        reply = self.generate(model, body)
        if reply.mode == "hang":
            return 504, fault_error("504", model, self.config.retry_delay_s).body()
        try:
            answer = json.loads(reply.body)
        except ValueError:  # the HTML 502 and `notjson` faults
            error = ApiError(502, "UNAVAILABLE", "Bad Gateway")
            return (502, error.body())
        if reply.status == 200 and not isinstance(answer, dict):
            return 500, ApiError(500, "INTERNAL", "bad answer").body()
        return reply.status, answer

    def batch_stats(self) -> JsonDict:
        """Batch jobs created, lines run and files stored (for /emulator/stats)."""
        return {
            "jobs": len(self.batches.jobs()),
            "lines_run": self.batches.lines_run,
            "files": self.files.count(),
            "requests": dict(self.batch_api.requests),
        }

    def reset(self) -> None:
        """Clear call statistics and trigger counters."""
        self.stats.reset()
        self.faults.reset()
