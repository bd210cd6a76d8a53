"""Which fault (if any) a call gets, and the error bodies of the HTTP-error faults.

Two sources, both deterministic: seeded per-call rates, and `!fault=NAME` / `!fault=NAMExK`
triggers in the prompt so a test can script exactly which calls fail.
"""

from __future__ import annotations

import random
import re
import threading
from collections import Counter

from emulator.config import FAULT_NAMES
from emulator.errors import (
    HELP_TYPE,
    QUOTA_FAILURE_TYPE,
    RETRY_INFO_TYPE,
    ApiError,
    JsonDict,
    invalid_argument,
)

ERROR_FAULTS = frozenset({"429", "429bare", "429daily", "500", "503", "504", "400", "403"})
TRANSPORT_FAULTS = frozenset({"hang", "drip", "truncated", "notjson", "502"})
CONTENT_FAULTS = frozenset(
    {"blocked", "image_safety", "prohibited", "noimage", "textonly", "nocandidate"}
)
# Quota and client errors come back at once; only server-side trouble costs the usual latency.
FAST_FAULTS = frozenset({"429", "429bare", "429daily", "400", "403"})

_TRIGGER_RE = re.compile(r"!fault=([a-z0-9_]+?)(?:x(\d+))?(?![a-z0-9_])")
PER_MINUTE_QUOTA_ID = "GenerateRequestsPerMinutePerProjectPerModel"
PER_DAY_QUOTA_ID = "GenerateRequestsPerDayPerProjectPerModel"

HTML_502 = (
    "<!DOCTYPE html>\n<html lang=en>\n<meta charset=utf-8>\n<title>Error 502 (Server Error)!!1"
    "</title>\n<p><b>502.</b> <ins>That's an error.</ins>\n<p>The server encountered a temporary "
    "error and could not complete your request.<p>Please try again in 30 seconds. "
    "<ins>That's all we know.</ins>\n"
)


class FaultPlan:
    """Thread-safe, seeded choice of the fault for each call."""

    def __init__(self, rates: dict[str, float], rng: random.Random) -> None:
        self._rates = sorted(rates.items())
        self._rng = rng
        self._lock = threading.Lock()
        self._seen: Counter[str] = Counter()

    def choose(self, prompt: str) -> str | None:
        """The fault for a call whose last user text is `prompt`, or None for a normal reply."""
        with self._lock:
            self._seen[prompt] += 1
            calls = self._seen[prompt]
            triggered = _trigger(prompt)
            if triggered is not None:
                name, limit = triggered
                if limit is None or calls <= limit:
                    return name
            return self._draw()

    def _draw(self) -> str | None:
        roll = self._rng.random()
        for name, rate in self._rates:
            if roll < rate:
                return name
            roll -= rate
        return None

    def reset(self) -> None:
        """Forget how often each trigger text has been seen."""
        with self._lock:
            self._seen.clear()


def _trigger(prompt: str) -> tuple[str, int | None] | None:
    match = _TRIGGER_RE.search(prompt)
    if match is None:
        return None
    name, limit = match.group(1), match.group(2)
    if name not in FAULT_NAMES:
        raise invalid_argument(
            f"Unknown emulator fault {name!r} in the prompt; known faults: "
            f"{', '.join(FAULT_NAMES)}."
        )
    return name, int(limit) if limit else None


def duration(seconds: float) -> str:
    """A protobuf Duration string such as `2s` or `2.5s`."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"


def _quota_error(model: str, quota_id: str, metric: str, retry_delay_s: float) -> ApiError:
    message = (
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n"
        f"* Quota exceeded for metric: {metric}, limit: 10, model: {model}\n"
        f"Please retry in {duration(retry_delay_s)}."
    )
    violation = {
        "quotaMetric": metric,
        "quotaId": quota_id,
        "quotaDimensions": {"location": "global", "model": model},
        "quotaValue": "10",
    }
    details: list[JsonDict] = [
        {"@type": QUOTA_FAILURE_TYPE, "violations": [violation]},
        {
            "@type": HELP_TYPE,
            "links": [
                {
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                }
            ],
        },
        {"@type": RETRY_INFO_TYPE, "retryDelay": duration(retry_delay_s)},
    ]
    return ApiError(429, "RESOURCE_EXHAUSTED", message, details)


def fault_error(name: str, model: str, retry_delay_s: float) -> ApiError:
    """The Google-shaped error body of an HTTP-error fault."""
    metric = "generativelanguage.googleapis.com/generate_requests_per_model"
    if name == "429":
        return _quota_error(model, PER_MINUTE_QUOTA_ID, metric, retry_delay_s)
    if name == "429daily":
        return _quota_error(model, PER_DAY_QUOTA_ID, metric + "_per_day", retry_delay_s)
    simple = {
        "429bare": (429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
        "500": (
            500,
            "INTERNAL",
            "An internal error has occurred. Please retry or report in "
            "https://developers.generativeai.google/guide/troubleshooting",
        ),
        "503": (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
        "504": (504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
        "400": (400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
        "403": (403, "PERMISSION_DENIED", "The caller does not have permission"),
    }
    code, status, message = simple[name]
    return ApiError(code, status, message)
