"""The data editqueue stores and shows: specs, turns, committed results, failures, status."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.verdicts import QualityRow

SESSION_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# How a session id is stored: a tenant's client-chosen id is kept as `tenant.id` (client ids and
# tenant names never hold a dot), so the same id chosen in two tenants names two sessions.
STORED_ID_RE = re.compile(r"(?:[A-Za-z0-9_-]{1,64}\.)?[A-Za-z0-9_-]{1,64}")
SHA256_RE = re.compile(r"[0-9a-f]{64}")
IMAGE_SIZES = ("512", "1K", "2K", "4K")
# `first+last:K`, the command-line spelling of {anchor: first, keep_last: K}
FIRST_LAST_RE = re.compile(r"first\+last:(\d+)")
HISTORY_FORMS = "'full', 'first+last:K' or {anchor: first, keep_last: K}"


class SessionState(StrEnum):
    """Where a session is as a whole."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class TurnState(StrEnum):
    """Where one turn is."""

    WAITING = "waiting"
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"  # its worker stopped heartbeating: the sweep puts it back
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Tier(StrEnum):
    """How a session's turns are bought: standard, Flex (50 %) or Batch waves (50 %)."""

    STANDARD = "standard"
    FLEX = "flex"
    BATCH = "batch"


class Transport(StrEnum):
    """How a turn reaches the API: the whole history replayed from S3 each call, or the
    Interactions API's server-side state (`previous_interaction_id`) with replay as fallback."""

    REPLAY = "replay"
    INTERACTIONS = "interactions"


class Strict(BaseModel):
    """Base for stored and user-facing models: unknown fields are errors, instances are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def validate_session_id(value: str) -> str:
    """Refuse client session ids that could be paths or keys of another shape."""
    if not SESSION_ID_RE.fullmatch(value):
        raise ValueError(
            f"session id {value!r} must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'"
        )
    return value


def validate_stored_id(value: str) -> str:
    """Refuse stored session ids (`id` or `tenant.id`) of any other shape."""
    if not STORED_ID_RE.fullmatch(value):
        raise ValueError(
            f"session id {value!r} must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-' "
            "(an operator may prefix a tenant's session with 'tenant.')"
        )
    return value


def scoped_session_id(tenant: str | None, client_id: str) -> str:
    """Where a tenant's client-chosen session id is stored (`tenant.id`; as is without a tenant)."""
    return f"{tenant}.{client_id}" if tenant else client_id


def public_session_id(stored: str) -> str:
    """The id a tenant knows a stored session by (the part after `tenant.`)."""
    return stored.rpartition(".")[2]


def _check_image_size(value: str | None) -> str | None:
    if value is not None and value not in IMAGE_SIZES:
        raise ValueError(f"image_size {value!r} must be one of {', '.join(IMAGE_SIZES)}")
    return value


def _check_prompt(value: str) -> str:
    if not value.strip():
        raise ValueError("prompt is empty; write what this turn should change")
    return value


class HistoryPolicy(Strict):
    """Which earlier turns are replayed: all of them, or the first plus the last `keep_last`."""

    anchor: Literal["first"] | None = None
    keep_last: int | None = Field(default=None, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _from_word(cls, value: Any) -> Any:
        if value == "full" or value is None:
            return {}
        if isinstance(value, str):
            match = FIRST_LAST_RE.fullmatch(value)
            if match is None:
                raise ValueError(f"history {value!r} must be {HISTORY_FORMS}")
            return {"anchor": "first", "keep_last": int(match.group(1))}
        return value

    @model_validator(mode="after")
    def _complete(self) -> HistoryPolicy:
        if (self.anchor is None) != (self.keep_last is None):
            raise ValueError("a re-anchoring history policy needs both anchor: first and keep_last")
        return self

    @property
    def is_full(self) -> bool:
        """True when every earlier turn is replayed."""
        return self.anchor is None

    @property
    def spelling(self) -> str:
        """How the command line writes this policy: `full` or `first+last:K`."""
        return "full" if self.keep_last is None else f"first+last:{self.keep_last}"


class TurnSpec(Strict):
    """One user turn as written in a session spec or sent by `append`."""

    prompt: str
    images: list[str] = Field(default_factory=list)
    mask: str | None = None  # an image: white where this turn's edit may change pixels
    image_size: str | None = None
    aspect_ratio: str | None = None

    _prompt = field_validator("prompt")(_check_prompt)
    _size = field_validator("image_size")(_check_image_size)


class SessionSpec(Strict):
    """A session as a client writes it (YAML or JSON)."""

    session_id: str | None = None
    model: str | None = None
    aspect_ratio: str | None = None
    image_size: str | None = None
    history: HistoryPolicy = Field(default_factory=HistoryPolicy)
    metadata: dict[str, str] = Field(default_factory=dict)
    budget_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    tier: Tier | None = None  # standard when unset (or `submit --tier`)
    transport: Transport | None = None  # EDITQUEUE_DEFAULT_TRANSPORT when unset (replay)
    turns: list[TurnSpec] = Field(min_length=1)

    _size = field_validator("image_size")(_check_image_size)

    @field_validator("session_id")
    @classmethod
    def _sid(cls, value: str | None) -> str | None:
        return None if value is None else validate_session_id(value)


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


class SessionRecord(Strict):
    """`session.json`: the session's fixed settings."""

    session_id: str
    model: str
    aspect_ratio: str | None = None
    image_size: str | None = None
    history: HistoryPolicy = Field(default_factory=HistoryPolicy)
    metadata: dict[str, str] = Field(default_factory=dict)
    budget_usd: float | None = None
    batch_id: str | None = None
    forked_from: str | None = None
    tenant: str | None = None  # owner when submitted through the HTTP API
    webhook_url: str | None = None  # where session events are POSTed (signed)
    tier: Tier = Tier.STANDARD
    transport: Transport = Transport.REPLAY
    created_at: datetime


class BatchRecord(Strict):
    """`batches/{batch_id}/batch.json`: the sessions submitted together and their shared budget.

    Rewritten only to raise or lower the budget (`editqueue budget BATCH --usd Y`).
    """

    batch_id: str
    session_ids: list[str]
    budget_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    created_at: datetime


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


class TurnStatus(Strict):
    """One turn in the status document."""

    index: int
    state: TurnState
    attempts: int = 0
    finish_reason: str | None = None
    error: ErrorInfo | None = None
    image: ImageInfo | None = None
    usage: dict[str, Any] = Field(default_factory=dict)
    latency_s: float | None = None
    cost_usd: float = 0.0
    prompt: str = ""
    waiting_reason: str | None = None
    due_at: float | None = None
    metrics: dict[str, float] = Field(default_factory=dict)  # worker/quality.py's numbers
    quality: QualityRow | None = None  # the verdicts against turn n-1 (shared/verdicts.py)
    tier: Tier | None = None  # the tier that billed a committed turn
    attempt_history: list[AttemptRecord] = Field(default_factory=list)
    transport: str | None = None  # replay | chain | seed for a committed turn
    upload_bytes: int | None = None  # request body bytes the committed answer's call(s) sent
    possibly_billed_usd: float = 0.0  # calls of attempts whose worker died (an upper bound)


class SessionStatus(Strict):
    """The status document `editqueue status --json` prints for one session."""

    session_id: str
    state: SessionState
    model: str
    cost_usd: float
    turns: list[TurnStatus]
    tier: Tier = Tier.STANDARD
    transport: Transport = Transport.REPLAY
    possibly_billed_usd: float = 0.0  # see LostCall: add to cost_usd for an upper bound
