"""Which request a turn sends: replay (generateContent with the history from S3), chain (the
Interactions API, only the new input after turn n-1's interaction) or seed (a new interaction
carrying the history from S3, the fallback that never loses a turn)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.broker import LANE_FLEX
from shared.errors import BadRequest, InteractionGone
from shared.history import request_payload
from shared.models import Transport
from shared.responses import ApiResponse
from shared.session_records import SessionRecord
from shared.session_spec import HistoryPolicy
from shared.sessions import SessionSnapshot
from shared.turn_records import TurnResult
from worker.interaction_payload import chain_alive, chained_payload, expires_at, seeded_payload


class Mode(StrEnum):
    """How one call carries the conversation."""

    REPLAY = "replay"
    CHAIN = "chain"
    SEED = "seed"


@dataclass(frozen=True)
class Plan:
    """One call to make: its mode and body (with blob placeholders)."""

    mode: Mode
    payload: dict[str, Any]

    @property
    def interactions(self) -> bool:
        """True when the call goes to the Interactions API."""
        return self.mode is not Mode.REPLAY

    def token_record(self, record: SessionRecord) -> SessionRecord:
        """The record the token estimate reads: a chain holds the whole conversation server-side,
        whatever the session's history policy, and those tokens are still billed as input."""
        if self.mode is Mode.CHAIN:
            return record.model_copy(update={"history": HistoryPolicy()})
        return record


def first_plan(snap: SessionSnapshot, index: int, lane: str, now: datetime) -> Plan:
    """The call turn `index` tries first under its session's transport."""
    record = snap.record
    if record.transport is not Transport.INTERACTIONS:
        return replay_plan(snap, index, lane)
    # Turn n-1's committed id, also after a fork (the fork copies it) or `retry --prompt` of
    # turn n: branching from any stored interaction is our reading of the docs, UNCONFIRMED by a
    # live test (a 404/403, or a 400 naming previous_interaction_id, is seeded like a gone chain).
    previous = snap.results.get(index - 1)
    if previous is not None and chain_alive(previous, now):
        assert previous.interaction_id is not None
        request = snap.requests[index]
        return Plan(Mode.CHAIN, chained_payload(record, request, previous.interaction_id, lane))
    return seed_plan(snap, index, lane)


def replay_plan(snap: SessionSnapshot, index: int, lane: str) -> Plan:
    """generateContent with the history from S3, as every replay turn sends it."""
    payload = request_payload(snap.record, snap.requests, snap.results, index)
    if lane == LANE_FLEX:
        payload["serviceTier"] = LANE_FLEX  # GenerateContentRequest.serviceTier (SDK)
    return Plan(Mode.REPLAY, payload)


def fallback_plan(
    snap: SessionSnapshot, index: int, failed: Plan, exc: Exception, lane: str
) -> Plan | None:
    """The next call after `failed` was refused with `exc`, or None when the error stands.

    A gone chain is seeded from S3. A seeded history the API refuses as malformed (400) is
    replayed through generateContent: whether the Interactions API accepts turns first answered
    by generateContent, signatures included, is UNCONFIRMED, and replay never loses a turn.
    """
    if isinstance(exc, InteractionGone) and failed.mode is Mode.CHAIN:
        return seed_plan(snap, index, lane)
    if isinstance(exc, BadRequest) and failed.mode is Mode.SEED and index > 1:
        return replay_plan(snap, index, lane)
    return None


def seed_plan(snap: SessionSnapshot, index: int, lane: str) -> Plan:
    """A new interaction seeded with the history from S3 (also turn 1 of a chain)."""
    payload = seeded_payload(snap.record, snap.requests, snap.results, index, lane)
    return Plan(Mode.SEED, payload)


def chain_fields(
    response: ApiResponse, committed_at: datetime, retention_s: float
) -> dict[str, Any]:
    """What a committed result records about how it was asked for (and the chain's next link)."""
    fields: dict[str, Any] = {
        "transport": response.transport,
        "upload_bytes": response.upload_bytes,
    }
    if response.interaction_id is not None:
        fields["interaction_id"] = response.interaction_id
        fields["interaction_expires_at"] = expires_at(
            response.interaction_created, committed_at, retention_s
        )
    return fields


def orphaned(response: ApiResponse, winner: TurnResult) -> str | None:
    """The interaction a losing duplicate created, which is not the chain (None if none)."""
    if response.interaction_id is None or response.interaction_id == winner.interaction_id:
        return None
    return response.interaction_id
