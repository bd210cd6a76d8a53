"""Stored and user-facing models: validation errors name the field; instances are frozen."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from shared.models import (
    BlobRef,
    ErrorInfo,
    FailureRecord,
    HistoryPolicy,
    ImageInfo,
    ResultPart,
    SessionRecord,
    SessionSpec,
    SessionState,
    TurnRequest,
    TurnResult,
    TurnSpec,
    TurnState,
    validate_session_id,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def spec(**fields: Any) -> dict[str, Any]:
    return {"turns": [{"prompt": "A contemporary living room"}], **fields}


def error_of(model: type, data: Any) -> tuple[tuple[Any, ...], str]:
    """The location and message of the single validation error `data` raises."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    errors = caught.value.errors()
    assert len(errors) == 1, errors
    return errors[0]["loc"], str(caught.value)


# --- session specs -----------------------------------------------------------------------------


def test_a_minimal_spec_gets_full_history_and_no_overrides() -> None:
    parsed = SessionSpec.model_validate(spec())
    assert parsed.history == HistoryPolicy()
    assert parsed.history.is_full
    assert parsed.session_id is None and parsed.model is None and parsed.image_size is None
    assert parsed.turns == [TurnSpec(prompt="A contemporary living room")]


def test_the_article_spec_parses_with_a_per_turn_size_override() -> None:
    parsed = SessionSpec.model_validate(
        {
            "model": "gemini-3.1-flash-image",
            "aspect_ratio": "16:9",
            "image_size": "2K",
            "history": "full",
            "turns": [
                {"prompt": "A living room", "images": ["photos/empty-room.jpg"]},
                {"prompt": "Change wall color to warm sage green (#8FAF8A)."},
                {"prompt": "Same scene at 4K.", "image_size": "4K"},
            ],
        }
    )
    assert parsed.image_size == "2K"
    assert [t.image_size for t in parsed.turns] == [None, None, "4K"]
    assert parsed.turns[0].images == ["photos/empty-room.jpg"]


@pytest.mark.parametrize(
    ("data", "loc", "words"),
    [
        (spec(turns=[{"prompt": "   \n\t"}]), ("turns", 0, "prompt"), "prompt is empty"),
        (spec(turns=[{"prompt": ""}]), ("turns", 0, "prompt"), "prompt is empty"),
        (
            spec(turns=[{"prompt": "ok"}, {"prompt": " "}]),
            ("turns", 1, "prompt"),
            "prompt is empty",
        ),
        (spec(turns=[]), ("turns",), "at least 1"),
        ({"model": "gemini-3.1-flash-image"}, ("turns",), "Field required"),
        (spec(colour="red"), ("colour",), "Extra inputs are not permitted"),
        (spec(turns=[{"prompt": "p", "size": "4K"}]), ("turns", 0, "size"), "Extra inputs"),
        (spec(image_size="3K"), ("image_size",), "image_size '3K' must be one of 512, 1K, 2K, 4K"),
        (spec(image_size="4k"), ("image_size",), "must be one of"),
        (spec(turns=[{"prompt": "p", "image_size": "8K"}]), ("turns", 0, "image_size"), "'8K'"),
        (spec(session_id="../x"), ("session_id",), "session id '../x' must be 1-64 characters"),
        (spec(session_id=""), ("session_id",), "must be 1-64 characters"),
        (spec(session_id="a" * 65), ("session_id",), "must be 1-64 characters"),
        (spec(session_id="a/b"), ("session_id",), "must be 1-64"),
        (spec(session_id="a b"), ("session_id",), "must be 1-64"),
        (spec(budget_usd=-0.01), ("budget_usd",), "greater than or equal to 0"),
        (spec(metadata={"room": 3}), ("metadata", "room"), "valid string"),
        (
            spec(history="last"),
            ("history",),
            "history 'last' must be 'full', 'first+last:K' or {anchor",
        ),
        (spec(history="FULL"), ("history",), "must be 'full'"),
        (spec(history={"anchor": "first"}), ("history",), "needs both anchor: first and keep_last"),
        (spec(history={"keep_last": 2}), ("history",), "needs both anchor: first and keep_last"),
        (spec(history={"anchor": "first", "keep_last": 0}), ("history", "keep_last"), "equal to 1"),
        (spec(history={"anchor": "last", "keep_last": 2}), ("history", "anchor"), "'first'"),
        (spec(history={"anchor": "first", "keep_last": 2, "x": 1}), ("history", "x"), "Extra"),
        (spec(history=["first", 2]), ("history",), "valid dictionary"),
    ],
)
def test_an_invalid_spec_names_the_field(
    data: dict[str, Any], loc: tuple[Any, ...], words: str
) -> None:
    error_loc, message = error_of(SessionSpec, data)
    assert error_loc == loc
    assert words in message


@pytest.mark.parametrize(
    ("history", "policy"),
    [
        ("full", HistoryPolicy()),
        (None, HistoryPolicy()),
        ({}, HistoryPolicy()),
        ({"anchor": "first", "keep_last": 2}, HistoryPolicy(anchor="first", keep_last=2)),
        ({"anchor": "first", "keep_last": 1}, HistoryPolicy(anchor="first", keep_last=1)),
    ],
)
def test_history_policy_forms(history: Any, policy: HistoryPolicy) -> None:
    parsed = SessionSpec.model_validate(spec(history=history))
    assert parsed.history == policy
    assert parsed.history.is_full is (policy.anchor is None)


def test_a_reanchoring_policy_is_not_full_and_keeps_its_count() -> None:
    policy = HistoryPolicy.model_validate({"anchor": "first", "keep_last": 3})
    assert (policy.is_full, policy.anchor, policy.keep_last) == (False, "first", 3)


def test_a_history_policy_round_trips_through_json() -> None:
    policy = HistoryPolicy(anchor="first", keep_last=2)
    assert HistoryPolicy.model_validate_json(policy.model_dump_json()) == policy
    assert HistoryPolicy.model_validate_json(HistoryPolicy().model_dump_json()).is_full


@pytest.mark.parametrize("sid", ["a", "A-z_09", "01JD3Q6K4X8YV2N5M7P9R0S1T2", "x" * 64])
def test_valid_session_ids_are_accepted_unchanged(sid: str) -> None:
    assert validate_session_id(sid) == sid
    assert SessionSpec.model_validate(spec(session_id=sid)).session_id == sid


@pytest.mark.parametrize("sid", ["../x", "..", ".", "a.b", "a/b", "", "x" * 65, "é", "a\nb", "a:b"])
def test_path_like_or_odd_session_ids_are_refused(sid: str) -> None:
    with pytest.raises(ValueError, match="must be 1-64 characters"):
        validate_session_id(sid)


@pytest.mark.parametrize("sid", ["ses\n", "a" * 64 + "\n"], ids=["short", "64-chars"])
def test_a_session_id_with_a_trailing_newline_is_refused(sid: str) -> None:
    with pytest.raises(ValueError, match="must be 1-64 characters"):
        validate_session_id(sid)


# --- stored records ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sha", "ok"),
    [("0" * 64, True), ("ab" * 32, True), ("A" * 64, False), ("0" * 63, False), ("g" * 64, False)],
)
def test_blob_refs_need_a_lowercase_sha256(sha: str, ok: bool) -> None:
    data = {"sha256": sha, "size_bytes": 1, "mime_type": "image/png"}
    if ok:
        assert BlobRef.model_validate(data).sha256 == sha
    else:
        loc, message = error_of(BlobRef, data)
        assert loc == ("sha256",)
        assert "64 lowercase hex digits" in message


def test_a_blob_ref_refuses_a_sha256_with_a_trailing_newline() -> None:
    loc, _ = error_of(BlobRef, {"sha256": "0" * 64 + "\n", "size_bytes": 1, "mime_type": "x"})
    assert loc == ("sha256",)


def test_a_blob_ref_refuses_a_negative_size() -> None:
    loc, _ = error_of(BlobRef, {"sha256": "0" * 64, "size_bytes": -1, "mime_type": "image/png"})
    assert loc == ("size_bytes",)


@pytest.mark.parametrize(
    ("model", "data", "loc"),
    [
        (TurnRequest, {"index": 0, "prompt": "p", "created_at": NOW}, ("index",)),
        (TurnRequest, {"index": 1, "prompt": "p", "revision": 0, "created_at": NOW}, ("revision",)),
        (TurnRequest, {"index": 1, "prompt": "p"}, ("created_at",)),
        (
            FailureRecord,
            {"index": 1, "error": {"kind": "k", "message": "m"}, "attempts": -1, "failed_at": NOW},
            ("attempts",),
        ),
        (
            FailureRecord,
            {"index": 1, "error": {"kind": "k"}, "attempts": 1, "failed_at": NOW},
            ("error", "message"),
        ),
    ],
)
def test_stored_records_name_the_invalid_field(
    model: type, data: dict[str, Any], loc: tuple
) -> None:
    assert error_of(model, data)[0] == loc


def test_a_turn_result_round_trips_every_part_field_through_json() -> None:
    image = BlobRef(sha256="c" * 64, size_bytes=3, mime_type="image/jpeg")
    result = TurnResult(
        index=2,
        parts=[
            ResultPart(text="thinking", thought=True, thought_signature="s1"),
            ResultPart(
                image=image,
                returned_mime_type="image/png",
                thought_signature="s2",
                other={"partMetadata": {"k": [1, 2]}},
            ),
        ],
        image=ImageInfo(blob="c" * 64, mime_type="image/jpeg", width=1, height=1, bytes=3),
        finish_reason="STOP",
        usage={"promptTokenCount": 12},
        latency_s=19.5,
        attempt=2,
        cost_usd=0.101,
        request_revision=2,
        committed_at=NOW,
    )
    assert TurnResult.model_validate_json(result.model_dump_json()) == result


def test_stored_models_are_frozen() -> None:
    record = SessionRecord(session_id="s1", model="m", created_at=NOW)
    with pytest.raises(ValidationError, match="frozen"):
        record.model = "other"  # type: ignore[misc]
    info = ErrorInfo(kind="k", message="m")
    with pytest.raises(ValidationError, match="frozen"):
        info.message = "changed"  # type: ignore[misc]


def test_a_turn_request_defaults_to_revision_one_and_no_images() -> None:
    req = TurnRequest(index=1, prompt="p", created_at=NOW)
    assert (req.revision, req.images, req.image_size, req.aspect_ratio) == (1, [], None, None)


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
