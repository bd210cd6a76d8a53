"""A turn's stored records: validation errors name the field; results round-trip through JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shared.turn_records import (
    BlobRef,
    FailureRecord,
    ImageInfo,
    ResultPart,
    TurnRequest,
    TurnResult,
)
from tests.shared.validation import error_of

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


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


def test_a_turn_request_defaults_to_revision_one_and_no_images() -> None:
    req = TurnRequest(index=1, prompt="p", created_at=NOW)
    assert (req.revision, req.images, req.image_size, req.aspect_ratio) == (1, [], None, None)
