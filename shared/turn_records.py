"""What the store keeps for one turn: its request, result, failure, attempts, parks, blobs."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import Field, field_validator

from shared.models import Strict, Tier

SHA256_RE = re.compile(r"[0-9a-f]{64}")


class BlobRef(Strict):
    """Exact bytes in the content-addressed blob store."""

    sha256: str
    size_bytes: int = Field(ge=0)
    mime_type: str  # sniffed from the bytes

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not SHA256_RE.fullmatch(value):
            raise ValueError("sha256 must be 64 lowercase hex digits")
        return value


class TurnRequest(Strict):
    """`turns/{n}/request.json`: the user turn and its per-turn overrides."""

    index: int = Field(ge=1)
    prompt: str
    images: list[BlobRef] = Field(default_factory=list)
    mask: BlobRef | None = None  # the edit region for the quality table; never sent to the API
    image_size: str | None = None
    aspect_ratio: str | None = None
    revision: int = Field(default=1, ge=1)  # bumped by `retry --prompt`
    created_at: datetime


class ResultPart(Strict):
    """One model part exactly as returned: text or an image, with its thought signature."""

    text: str | None = None
    image: BlobRef | None = None
    returned_mime_type: str | None = None  # the mimeType string the API sent, replayed verbatim
    thought: bool = False
    thought_signature: str | None = None
    other: dict[str, Any] = Field(default_factory=dict)  # any other field, replayed verbatim


class ImageInfo(Strict):
    """The turn's output image as the status document shows it."""

    blob: str
    mime_type: str
    width: int
    height: int
    bytes: int


class TurnResult(Strict):
    """`turns/{n}/result.json`: the committed model turn. Its existence means the turn is done."""

    index: int = Field(ge=1)
    parts: list[ResultPart]
    image: ImageInfo
    finish_reason: str | None = None
    usage: dict[str, Any] = Field(default_factory=dict)
    model_version: str | None = None
    response_id: str | None = None
    latency_s: float
    attempt: int = Field(ge=1)
    cost_usd: float
    request_revision: int = 1
    committed_at: datetime
    metrics: dict[str, float] = Field(default_factory=dict)
    # The quality numbers are measured off the chain's path: when turn n+1 was already requested,
    # turn n commits without them (`metrics_deferred`) and turn n+1 measures them while it waits
    # for its own answer, storing them as its `previous_metrics` (or in `turns/n/quality.json`
    # when an attempt of turn n+1 ends without committing). `SessionSnapshot.metrics_of` finds
    # them (worker/measuring.py).
    metrics_deferred: bool = False
    previous_metrics: dict[str, float] | None = None
    tier: Tier | None = None  # the tier that billed this answer (None: written before tiers)
    # How this answer was asked for: replay (generateContent), chain (previous_interaction_id,
    # only the new input sent) or seed (a new interaction carrying the history from S3).
    transport: str | None = None
    interaction_id: str | None = None  # recorded only with the committed answer: the chain
    interaction_expires_at: datetime | None = None  # our estimate (see worker/interaction_payload)
    upload_bytes: int | None = Field(default=None, ge=0)  # request body bytes sent for it


class QualityRecord(Strict):
    """`turns/{n}/quality.json`: a deferred turn's quality numbers, written (once) when an
    attempt of turn n+1 ended without committing (failed, cancelled, parked, requeued), so no
    result of turn n+1 carries them."""

    index: int = Field(ge=1)
    metrics: dict[str, float] = Field(default_factory=dict)


class ErrorInfo(Strict):
    """What went wrong, as the status document shows it."""

    kind: str
    status: int | None = None
    message: str


class FailureRecord(Strict):
    """`turns/{n}/failure.json`: why the turn stopped."""

    index: int = Field(ge=1)
    error: ErrorInfo
    attempts: int = Field(ge=0)
    request_revision: int = 1
    failed_at: datetime


class AttemptRecord(Strict):
    """`turns/{n}/attempts/{revision}-{attempt}.json`: one API attempt that did not commit.

    Written once per attempt (create-if-absent), so a timed-out call's 35 s stay on record;
    the committed attempt is in `result.json`.
    """

    index: int = Field(ge=1)
    attempt: int = Field(ge=1)
    request_revision: int = 1
    outcome: str  # retried | parked | failed (committed: synthesised from result.json)
    latency_s: float | None = None  # the API call's wall time, deadline overruns included
    error: ErrorInfo | None = None
    ended_at: datetime


class ParkRecord(Strict):
    """`turns/{n}/parked.json`: a turn waiting longer than the broker may hold a countdown.

    Replaced each time the turn is parked again; the sweep re-enqueues it once `due_at` passes.
    """

    index: int = Field(ge=1)
    reason: str  # retry_delay | daily_quota | outage | budget
    due_at: float  # unix seconds
    attempt: int = Field(ge=1)  # the attempt to run when it comes back
    parks: int = Field(default=1, ge=1)  # how many times this request was parked
    request_revision: int = 1
    error: ErrorInfo | None = None


class ParkTally(Strict):
    """`turns/{n}/parks.json`: how often turn n's request revision was parked.

    Kept apart from `parked.json`, which the sweep deletes when it re-enqueues the turn, so the
    count survives the sweep and `EDITQUEUE_MAX_PARKS` can end a turn that parks forever.
    """

    index: int = Field(ge=1)
    request_revision: int = 1
    parks: int = Field(ge=0)


class LostCall(Strict):
    """`turns/{n}/lost-{attempt}.json`: an attempt whose worker died during its call.

    The API may have billed that call, so its reserved price counts as possibly billed: money
    reports add it as an upper bound and never under-count.
    """

    index: int = Field(ge=1)
    attempt: int = Field(ge=1)
    possibly_billed_usd: float = Field(ge=0)
    lost_at: datetime
