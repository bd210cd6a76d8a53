"""The base of editqueue's pydantic models and the enums they share: session and turn states,
tier and transport."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


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
