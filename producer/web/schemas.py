"""What the HTTP API accepts and answers, as pydantic models (they make `/openapi.json`).

Request bodies for sessions and turns are the CLI's spec and turn, plus `webhook_url`; reference
images travel inline as base64 (optionally a `data:image/...;base64,` URL), never as paths.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from shared.ids import SESSION_ID_RE, STORED_ID_RE
from shared.models import SessionState, Tier, Transport
from shared.session_spec import HistoryPolicy, SessionSpec, TurnSpec
from shared.status_document import TurnStatus

SESSION_ID_PATTERN = f"^{SESSION_ID_RE.pattern}$"
STORED_ID_PATTERN = f"^{STORED_ID_RE.pattern}$"
IMAGES_DOC = (
    "Reference images for this turn, each the image bytes in base64 (or a data: URL); "
    "JPEG, PNG, GIF or WebP, up to 20 MB each."
)

MASK_DOC = (
    "Optional: an image in base64 (or a data: URL), white where this turn's edit may change "
    "pixels. Only the quality table uses it; it is never sent to the model."
)

CREATE_EXAMPLE: dict[str, Any] = {
    "aspect_ratio": "16:9",
    "image_size": "1K",
    "turns": [
        {"prompt": "A contemporary living room, empty, morning light."},
        {"prompt": "Change wall color to warm sage green (#8FAF8A). Keep all else exactly."},
    ],
}


class Answer(BaseModel):
    """Base of every answer model."""

    model_config = ConfigDict(extra="forbid")


class HttpTurn(TurnSpec):
    """A turn: `{prompt, image_size?, aspect_ratio?, images?, mask?}` (images in base64)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"prompt": "Add a tall walnut bookshelf on the left."}]}
    )
    images: list[str] = Field(default_factory=list, description=IMAGES_DOC)
    mask: str | None = Field(default=None, description=MASK_DOC)


class CreateSession(SessionSpec):
    """A session spec as the CLI reads it, plus where to POST its events."""

    model_config = ConfigDict(json_schema_extra={"examples": [CREATE_EXAMPLE]})
    turns: list[HttpTurn] = Field(min_length=1)  # type: ignore[assignment]
    webhook_url: HttpUrl | None = Field(
        default=None, description="Signed events (Standard Webhooks) are POSTed here."
    )


class RetryTurn(BaseModel):
    """Re-run a failed turn (default: the first failed one), optionally reworded."""

    model_config = ConfigDict(extra="forbid")

    turn: int | None = Field(default=None, ge=1)
    prompt: str | None = None


class ForkSession(BaseModel):
    """Branch a new session from turns 1..at."""

    model_config = ConfigDict(extra="forbid")

    at: int = Field(ge=1)
    session_id: str | None = Field(default=None, pattern=SESSION_ID_PATTERN)
    history: HistoryPolicy | None = Field(
        default=None,
        description=(
            "The fork's history policy (default: the session's): 'full', 'first+last:K' or "
            "{anchor: first, keep_last: K}, as in a spec"
        ),
    )
    budget_usd: float | None = Field(
        default=None, ge=0, description="The fork's budget (default: the session's)."
    )


class SessionLinks(Answer):
    """Where to go next: the API's URLs for this session."""

    status: str
    turns: str
    cancel: str
    retry: str
    fork: str
    gallery: str


class SessionCreated(Answer):
    """A session was stored and its first turn queued."""

    session_id: str
    state: SessionState
    status_url: str
    gallery_url: str
    urls: SessionLinks


class TurnAdded(Answer):
    """A turn was appended (and queued if its predecessor is done)."""

    session_id: str
    index: int
    status_url: str


class Accepted(Answer):
    """A retry or cancel was recorded."""

    session_id: str
    index: int | None = None
    state: str
    status_url: str


class Forked(Answer):
    """A new session holding turns 1..at of another."""

    session_id: str
    forked_from: str
    at: int
    status_url: str


class TurnView(TurnStatus):
    """A turn of the status document, with the URL of its image."""

    image_url: str | None = None


class SessionView(Answer):
    """The status document of `editqueue status --json`, with image URLs and links."""

    session_id: str
    state: SessionState
    model: str
    tier: Tier = Tier.STANDARD
    transport: Transport = Transport.REPLAY
    cost_usd: float
    created_at: datetime
    forked_from: str | None = None
    webhook_url: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    turns: list[TurnView]
    urls: SessionLinks


class SessionSummary(Answer):
    """One session in a listing."""

    session_id: str
    state: SessionState
    model: str
    cost_usd: float
    turns: int
    turns_succeeded: int
    status_url: str


class SessionPage(Answer):
    """A page of sessions in id order; pass `next_cursor` as `cursor` for the next page."""

    sessions: list[SessionSummary]
    next_cursor: str | None = None


class Health(Answer):
    """The server is up."""

    status: str = "ok"
