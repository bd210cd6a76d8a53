"""Prometheus metrics: the `editqueue_*` families and the few hooks that record into them.

Names follow Prometheus conventions (one prefix, base units, `_total` on counters) and no label
carries a session id. The families are created on first use, not at import, so a worker can
switch prometheus_client to multiprocess mode (`shared/metrics_http.py`) before any value exists.
Queue length and task counters are Celery's own (Flower, celery-exporter): not duplicated here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

# Seconds: a turn can wait out retries and parks (buckets up to 900 s, as the issue asks).
TURN_BUCKETS_S = (0.5, 1, 2.5, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 900)
CALL_BUCKETS_S = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 25, 30, 35, 45, 60, 120, 300, 900)
QUEUE_BUCKETS_S = (0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600)
# The quality numbers kept as histograms, all fractions: SSIM, changed share, the shift as a share
# of the frame, and the stored scale and aspect ratios (~1.0) as their deviation |x - 1|
# (`scale_deviation`, `aspect_deviation`). The verdicts of the quality table are counted apart.
QUALITY_SIGNALS = ("ssim", "ssim_outside", "changed_fraction", "changed_outside", "shift")
RATIO_SIGNALS = ("scale", "aspect")


def quality_signals(numbers: dict[str, float]) -> Iterator[tuple[str, float]]:
    """(signal, value) of a turn's stored quality numbers, as the histogram records them."""
    for name in QUALITY_SIGNALS:
        if name in numbers:
            yield name, numbers[name]
    for name in RATIO_SIGNALS:
        if name in numbers:
            yield f"{name}_deviation", abs(numbers[name] - 1.0)


QUALITY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.02,
    0.03,
    0.05,
    0.1,
    0.2,
    0.3,
    0.4,
    0.5,
    0.6,
    0.7,
    0.8,
    0.85,
    0.9,
    0.95,
    0.98,
    0.99,
)
IMAGE_BYTES_BUCKETS = tuple(2**k for k in range(16, 27))  # 64 KiB .. 64 MiB

# Label values that exist from the start at 0, so a first failure is a rise, not a new series
# (rate() ignores a series' first sample).
TURN_OUTCOMES = ("committed", "failed", "retried", "parked", "duplicate")
SESSION_STATES = ("submitted", "completed", "failed", "cancelled")

USAGE_DIRECTIONS = (
    ("input", "promptTokensDetails", "promptTokenCount"),
    ("output", "candidatesTokensDetails", "candidatesTokenCount"),
)


@dataclass(frozen=True)
class Families:
    """Every editqueue metric family, created once per process."""

    turns: Counter
    turn_duration: Histogram
    queue_wait: Histogram
    call_duration: Histogram
    responses: Counter
    retries: Counter
    ratelimit_waits: Counter
    ratelimit_wait_seconds: Counter
    tokens: Counter
    images: Counter
    image_bytes: Histogram
    cost: Counter
    batch_cost: Counter
    budget_remaining: Gauge
    budget_limit: Gauge
    webhooks: Counter
    quality: Histogram
    verdicts: Counter
    sessions: Counter
    inflight: Gauge
    blob_cache: Counter
    blob_cache_bytes: Counter
    s3_requests: Counter


def _make() -> Families:
    made = Families(**_turn_families(), **_spend_families(), **_fleet_families())
    for outcome in TURN_OUTCOMES:
        made.turns.labels(outcome)
    for state in SESSION_STATES:
        made.sessions.labels(state)
    return made


def _turn_families() -> dict[str, Any]:
    size = ("model", "image_size", "tier")
    return dict(
        turns=Counter("editqueue_turns", "Turn deliveries by how they ended", ["outcome"]),
        turn_duration=Histogram(
            "editqueue_turn_duration_seconds",
            "Committed turns: from ready to run (request written, predecessor committed) to commit",
            size,
            buckets=TURN_BUCKETS_S,
        ),
        queue_wait=Histogram(
            "editqueue_turn_queue_wait_seconds",
            "First attempts: from ready to run to a worker starting it",
            buckets=QUEUE_BUCKETS_S,
        ),
        call_duration=Histogram(
            "editqueue_api_call_duration_seconds",
            "generateContent calls, failed and timed-out ones included",
            size,
            buckets=CALL_BUCKETS_S,
        ),
        responses=Counter(
            "editqueue_gemini_responses",
            "generateContent answers by HTTP code (none: no answer) and error kind (ok)",
            ["model", "code", "kind"],
        ),
        retries=Counter(
            "editqueue_retries", "Turn attempts retried or parked, by reason", ["reason"]
        ),
        ratelimit_waits=Counter(
            "editqueue_ratelimit_waits", "Calls the fleet's call gate deferred"
        ),
        ratelimit_wait_seconds=Counter(
            "editqueue_ratelimit_wait_seconds", "Seconds of deferral the call gate imposed"
        ),
        inflight=Gauge(
            "editqueue_api_calls_in_flight",
            "generateContent calls in progress",
            ["model"],
            multiprocess_mode="livesum",
        ),
    )


def _spend_families() -> dict[str, Any]:
    return dict(
        tokens=Counter(
            "editqueue_tokens",
            "Tokens billed by direction and modality",
            ["model", "direction", "modality"],
        ),
        images=Counter("editqueue_images", "Images committed", ["model", "image_size"]),
        image_bytes=Histogram(
            "editqueue_image_size_bytes",
            "Committed image sizes",
            ["image_size"],
            buckets=IMAGE_BYTES_BUCKETS,
        ),
        cost=Counter(
            "editqueue_cost_usd",
            "Spend as billed (duplicates and image-less answers included)",
            ["model", "tier"],
        ),
        batch_cost=Counter(
            "editqueue_batch_cost_usd",
            "Spend as billed per batch (one series per batch id; restart to forget old ones)",
            ["batch"],
        ),
        budget_limit=Gauge(
            "editqueue_budget_limit_usd",
            "A batch's budget, as the last settled call saw it",
            ["batch"],
            multiprocess_mode="mostrecent",
        ),
        budget_remaining=Gauge(
            "editqueue_budget_remaining_usd",
            "What is left of a batch budget after the last settled call",
            ["batch"],
            multiprocess_mode="mostrecent",
        ),
    )


def _fleet_families() -> dict[str, Any]:
    return dict(
        webhooks=Counter(
            "editqueue_webhook_deliveries", "Webhook deliveries by outcome", ["outcome"]
        ),
        verdicts=Counter(
            "editqueue_quality_verdicts",
            "Quality-table verdicts of committed transitions (strong, good, weak, none)",
            ["axis", "verdict"],
        ),
        quality=Histogram(
            "editqueue_turn_quality",
            "Quality numbers of committed transitions (fractions: SSIM, changed share, drift)",
            ["signal"],
            buckets=QUALITY_BUCKETS,
        ),
        sessions=Counter("editqueue_sessions", "Sessions entering a state", ["state"]),
        blob_cache=Counter("editqueue_blob_cache_lookups", "Blob cache lookups", ["result"]),
        blob_cache_bytes=Counter(
            "editqueue_blob_cache_downloaded_bytes",
            "Bytes the blob cache downloaded from the store",
        ),
        s3_requests=Counter(
            "editqueue_s3_requests", "Object store requests by S3 operation", ["verb"]
        ),
    )


_lock = threading.Lock()
_created: list[Families] = []


def families() -> Families:
    """The process's metric families (created on first use)."""
    if not _created:
        with _lock:
            if not _created:
                _created.append(_make())
    return _created[0]


def token_counts(usage: dict[str, Any]) -> Iterator[tuple[str, str, int]]:
    """(direction, modality, count) from a usageMetadata; totals as `all` without details."""
    for direction, details_key, total_key in USAGE_DIRECTIONS:
        details = usage.get(details_key)
        if isinstance(details, list) and details:
            for item in details:
                if isinstance(item, dict) and isinstance(item.get("tokenCount"), int):
                    yield (
                        direction,
                        str(item.get("modality", "unknown")).lower(),
                        item["tokenCount"],
                    )
        elif isinstance(usage.get(total_key), int):
            yield direction, "all", usage[total_key]
    thoughts = usage.get("thoughtsTokenCount")
    if isinstance(thoughts, int):
        yield "thoughts", "text", thoughts


def record_tokens(model: str, usage: dict[str, Any]) -> None:
    """Count an answer's tokens."""
    for direction, modality, count in token_counts(usage):
        families().tokens.labels(model, direction, modality).inc(count)


def record_blob_cache(hits: int, misses: int, downloaded_bytes: int) -> None:
    """Count blob cache lookups and downloaded bytes."""
    fam = families()
    if hits:
        fam.blob_cache.labels("hit").inc(hits)
    if misses:
        fam.blob_cache.labels("miss").inc(misses)
    if downloaded_bytes:
        fam.blob_cache_bytes.inc(downloaded_bytes)


def record_s3_request(verb: str) -> None:
    """Count one S3 API call (GetObject, PutObject, ...)."""
    families().s3_requests.labels(verb).inc()


def record_webhook(outcome: str) -> None:
    """Count one webhook delivery attempt by how it ended."""
    families().webhooks.labels(outcome).inc()


def record_session(state: str) -> None:
    """Count a session entering `state` (submitted, completed, failed, cancelled)."""
    families().sessions.labels(state).inc()


def record_budget(batch_id: str, limit_usd: float, remaining_usd: float) -> None:
    """A batch's budget and what is left of it."""
    fam = families()
    fam.budget_limit.labels(batch_id).set(limit_usd)
    fam.budget_remaining.labels(batch_id).set(remaining_usd)
