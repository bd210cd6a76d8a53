"""The status document `editqueue status --json` prints (and the HTTP API returns) per session."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from shared.models import SessionState, Strict, Tier, Transport, TurnState
from shared.turn_records import AttemptRecord, ErrorInfo, ImageInfo
from shared.verdicts import QualityRow


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
