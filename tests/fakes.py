"""Fakes for unit tests (never production code): a scripted Gemini client."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from shared.request_body import RequestBody
from shared.responses import ApiResponse

Outcome = ApiResponse | Exception | Callable[[str, bytes], ApiResponse]


class FakeGeminiClient:
    """In-memory GeminiClient for unit tests: plays scripted outcomes and records each request.

    An outcome is an ApiResponse to return, an exception to raise, or a callable given
    (model, body bytes) that returns an ApiResponse (or raises).
    """

    def __init__(self, outcomes: Iterable[Outcome]) -> None:
        self._outcomes = list(outcomes)
        self.models: list[str] = []
        self.bodies: list[bytes] = []

    @property
    def calls(self) -> int:
        """How many times `generate` was called."""
        return len(self.bodies)

    def body_json(self, index: int = -1) -> Any:
        """A recorded request body parsed as JSON (the last one by default)."""
        return json.loads(self.bodies[index])

    def generate(self, model: str, body: RequestBody) -> ApiResponse:
        """Record the request, then play the next scripted outcome."""
        data = b"".join(body.chunks())
        if len(data) != body.content_length:
            raise AssertionError(f"body yielded {len(data)} bytes, declared {body.content_length}")
        self.models.append(model)
        self.bodies.append(data)
        if self.calls > len(self._outcomes):
            raise AssertionError(f"call {self.calls} but only {len(self._outcomes)} scripted")
        outcome = self._outcomes[self.calls - 1]
        if isinstance(outcome, Exception):
            raise outcome
        if isinstance(outcome, ApiResponse):
            return outcome
        return outcome(model, data)
