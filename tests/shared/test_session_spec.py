"""Session specs as a client writes them: validation errors name the field; history policies and
session ids take only their documented forms."""

from __future__ import annotations

from typing import Any

import pytest

from shared.ids import validate_session_id
from shared.session_spec import HistoryPolicy, SessionSpec, TurnSpec
from tests.shared.validation import error_of


def spec(**fields: Any) -> dict[str, Any]:
    return {"turns": [{"prompt": "A contemporary living room"}], **fields}


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
