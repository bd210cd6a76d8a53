"""The models' base and shared enums: stored models are frozen; states serialise as documented."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from shared.models import SessionState, TurnState
from shared.session_records import SessionRecord
from shared.turn_records import ErrorInfo

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_stored_models_are_frozen() -> None:
    record = SessionRecord(session_id="s1", model="m", created_at=NOW)
    with pytest.raises(ValidationError, match="frozen"):
        record.model = "other"  # type: ignore[misc]
    info = ErrorInfo(kind="k", message="m")
    with pytest.raises(ValidationError, match="frozen"):
        info.message = "changed"  # type: ignore[misc]


def test_states_serialise_as_the_documented_lowercase_words() -> None:
    assert [s.value for s in SessionState] == [
        "queued",
        "running",
        "completed",
        "failed",
        "cancelled",
    ]
    assert [s.value for s in TurnState] == [
        "waiting",
        "queued",
        "running",
        "retrying",
        "succeeded",
        "failed",
        "cancelled",
    ]
