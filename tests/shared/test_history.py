"""History: which turns are replayed, how stored parts come back as `contents`, size checks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.catalog import (
    FLASH_25,
    INLINE_REQUEST_LIMIT_BYTES,
    NB2,
    PRO,
    ModelProfile,
    profile_for,
)
from shared.errors import HistoryTooLarge, PermanentError
from shared.history import (
    BlobData,
    build_contents,
    check_fits,
    effective_size,
    estimate_tokens,
    generation_config,
    model_content,
    model_part,
    replayed_turns,
    request_payload,
    user_content,
)
from shared.session_records import SessionRecord
from shared.session_spec import HistoryPolicy
from shared.turn_records import BlobRef, ImageInfo, ResultPart, TurnRequest, TurnResult

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
FULL = HistoryPolicy()


def anchored(keep_last: int) -> HistoryPolicy:
    return HistoryPolicy(anchor="first", keep_last=keep_last)


def sha(n: int) -> str:
    return f"{n:064x}"


def blob(n: int, size: int = 100, mime: str = "image/jpeg") -> BlobRef:
    return BlobRef(sha256=sha(n), size_bytes=size, mime_type=mime)


def request(
    index: int,
    prompt: str | None = None,
    *,
    images: list[BlobRef] | None = None,
    image_size: str | None = None,
    aspect_ratio: str | None = None,
) -> TurnRequest:
    return TurnRequest(
        index=index,
        prompt=prompt if prompt is not None else f"prompt {index}",
        images=images or [],
        image_size=image_size,
        aspect_ratio=aspect_ratio,
        created_at=NOW,
    )


def result(index: int, parts: list[ResultPart] | None = None) -> TurnResult:
    image = blob(1000 + index, size=5000 + index)
    return TurnResult(
        index=index,
        parts=parts
        or [
            ResultPart(text=f"model text {index}", thought_signature=f"sig-text-{index}"),
            ResultPart(
                image=image, returned_mime_type="image/png", thought_signature=f"sig-img-{index}"
            ),
        ],
        image=ImageInfo(blob=image.sha256, mime_type="image/jpeg", width=64, height=36, bytes=5000),
        latency_s=1.0,
        attempt=1,
        cost_usd=0.1,
        committed_at=NOW,
    )


def record(
    history: HistoryPolicy = FULL,
    *,
    image_size: str | None = "2K",
    aspect_ratio: str | None = "16:9",
    model: str = "gemini-3.1-flash-image",
) -> SessionRecord:
    return SessionRecord(
        session_id="s1",
        model=model,
        aspect_ratio=aspect_ratio,
        image_size=image_size,
        history=history,
        created_at=NOW,
    )


# --- which turns are replayed ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "index", "expected"),
    [
        (FULL, 1, []),
        (FULL, 2, [1]),
        (FULL, 5, [1, 2, 3, 4]),
        (FULL, 12, list(range(1, 12))),
        (anchored(1), 1, []),
        (anchored(1), 2, [1]),
        (anchored(1), 3, [1, 2]),
        (anchored(1), 4, [1, 3]),
        (anchored(1), 9, [1, 8]),
        (anchored(2), 3, [1, 2]),
        (anchored(2), 4, [1, 2, 3]),
        (anchored(2), 5, [1, 3, 4]),
        (anchored(2), 10, [1, 8, 9]),
        (anchored(3), 5, [1, 2, 3, 4]),
        (anchored(3), 6, [1, 3, 4, 5]),
        (anchored(3), 20, [1, 17, 18, 19]),
    ],
)
def test_replayed_turns_follow_the_policy_for_each_index(
    policy: HistoryPolicy, index: int, expected: list[int]
) -> None:
    assert replayed_turns(policy, index) == expected


@pytest.mark.parametrize("keep_last", [1, 2, 3, 5])
def test_reanchoring_keeps_first_and_last_k_turns(keep_last: int) -> None:
    policy = anchored(keep_last)
    for index in range(2, 40):
        turns = replayed_turns(policy, index)
        assert turns[0] == 1, index
        assert turns[-1] == index - 1, index
        assert turns == sorted(set(turns)), index
        assert len(turns) == min(index - 1, keep_last + 1), index
        tail = [t for t in turns if t != 1]
        assert tail == list(range(index - len(tail), index)), index


# --- user and model contents -------------------------------------------------------------------


def test_user_content_is_the_prompt_then_each_reference_image_as_a_placeholder() -> None:
    req = request(1, "Stage this room", images=[blob(1, 10, "image/png"), blob(2, 20)])
    assert user_content(req) == {
        "role": "user",
        "parts": [
            {"text": "Stage this room"},
            {"inlineData": {"mimeType": "image/png", "data": BlobData(sha(1), 10)}},
            {"inlineData": {"mimeType": "image/jpeg", "data": BlobData(sha(2), 20)}},
        ],
    }


def test_model_part_replays_the_returned_mime_type_and_signature_not_the_sniffed_one() -> None:
    part = ResultPart(
        image=blob(7, 300, "image/jpeg"), returned_mime_type="image/png", thought_signature="SIG"
    )
    assert model_part(part) == {
        "inlineData": {"mimeType": "image/png", "data": BlobData(sha(7), 300)},
        "thoughtSignature": "SIG",
    }


def test_model_part_falls_back_to_the_sniffed_mime_type_when_none_was_returned() -> None:
    part = ResultPart(image=blob(7, 300, "image/webp"))
    assert model_part(part) == {
        "inlineData": {"mimeType": "image/webp", "data": BlobData(sha(7), 300)}
    }


def test_model_part_replays_thought_text_and_unknown_fields_verbatim() -> None:
    part = ResultPart(
        text="thinking...",
        thought=True,
        thought_signature="T-SIG",
        other={"videoMetadata": {"fps": 2}, "partMetadata": "x"},
    )
    assert model_part(part) == {
        "videoMetadata": {"fps": 2},
        "partMetadata": "x",
        "text": "thinking...",
        "thought": True,
        "thoughtSignature": "T-SIG",
    }


def test_model_part_keeps_an_empty_text_and_omits_absent_fields() -> None:
    assert model_part(ResultPart(text="")) == {"text": ""}
    assert model_part(ResultPart()) == {}


def test_model_content_replays_every_part_in_order() -> None:
    res = result(3)
    assert model_content(res) == {
        "role": "model",
        "parts": [
            {"text": "model text 3", "thoughtSignature": "sig-text-3"},
            {
                "inlineData": {"mimeType": "image/png", "data": BlobData(sha(1003), 5003)},
                "thoughtSignature": "sig-img-3",
            },
        ],
    }


def test_build_contents_alternates_user_and_model_turns_and_ends_with_the_new_user_turn() -> None:
    requests = {n: request(n) for n in range(1, 4)}
    results = {n: result(n) for n in range(1, 3)}
    contents = build_contents(FULL, requests, results, 3)
    assert [c["role"] for c in contents] == ["user", "model", "user", "model", "user"]
    assert [c["parts"][0].get("text") for c in contents] == [
        "prompt 1",
        "model text 1",
        "prompt 2",
        "model text 2",
        "prompt 3",
    ]


def test_build_contents_for_the_first_turn_is_only_its_user_turn() -> None:
    assert build_contents(FULL, {1: request(1)}, {}, 1) == [
        {"role": "user", "parts": [{"text": "prompt 1"}]}
    ]


def test_build_contents_under_reanchoring_reads_only_the_replayed_turns() -> None:
    requests = {n: request(n) for n in range(1, 6)}
    # Turns 2 and 3 are dropped by the policy: their results are deliberately missing.
    results = {1: result(1), 4: result(4)}
    contents = build_contents(anchored(1), requests, results, 5)
    texts = [c["parts"][0]["text"] for c in contents]
    assert texts == ["prompt 1", "model text 1", "prompt 4", "model text 4", "prompt 5"]


# --- generation config and sizes ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("session", "turn", "expected"),
    [
        (("16:9", "2K"), (None, None), ("16:9", "2K")),
        (("16:9", "2K"), (None, "4K"), ("16:9", "4K")),
        (("16:9", "2K"), ("1:1", None), ("1:1", "2K")),
        (("16:9", "2K"), ("9:16", "512"), ("9:16", "512")),
        ((None, None), (None, None), (None, None)),
        ((None, None), ("4:3", "1K"), ("4:3", "1K")),
    ],
)
def test_effective_size_prefers_the_turn_override_over_the_session_default(
    session: tuple[str | None, str | None],
    turn: tuple[str | None, str | None],
    expected: tuple[str | None, str | None],
) -> None:
    rec = record(aspect_ratio=session[0], image_size=session[1])
    req = request(1, aspect_ratio=turn[0], image_size=turn[1])
    assert effective_size(rec, req) == expected


def test_generation_config_asks_for_text_and_image_at_the_effective_size() -> None:
    config = generation_config(record(), request(1, image_size="4K"))
    assert config == {
        "responseModalities": ["TEXT", "IMAGE"],
        "imageConfig": {"aspectRatio": "16:9", "imageSize": "4K"},
    }


def test_generation_config_omits_image_config_when_nothing_is_set() -> None:
    config = generation_config(record(aspect_ratio=None, image_size=None), request(1))
    assert config == {"responseModalities": ["TEXT", "IMAGE"]}


def test_generation_config_sends_only_the_values_that_are_set() -> None:
    config = generation_config(record(aspect_ratio=None, image_size="1K"), request(1))
    assert config["imageConfig"] == {"imageSize": "1K"}


def test_request_payload_combines_contents_under_the_policy_and_the_turn_config() -> None:
    rec = record(anchored(1))
    requests = {n: request(n) for n in range(1, 5)}
    results = {n: result(n) for n in range(1, 4)}
    payload = request_payload(rec, requests, results, 4)
    assert set(payload) == {"contents", "generationConfig"}
    assert len(payload["contents"]) == 5  # turns 1 and 3, then turn 4's user turn
    assert payload["contents"][2]["parts"][0]["text"] == "prompt 3"
    assert payload["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9", "imageSize": "2K"}


# --- token estimate and fit checks -------------------------------------------------------------


def test_estimate_tokens_counts_prompts_input_images_and_each_image_size() -> None:
    rec = record(image_size="2K")
    requests = {
        1: request(1, "x" * 40, images=[blob(1)]),
        2: request(2, "y" * 8, image_size="4K"),
    }
    # Output at 4K (2520) + turn 1: 40//4+1 text, one input image (1120), its 2K output (1680)
    # + turn 2's prompt: 8//4+1.
    assert estimate_tokens(NB2, rec, requests, 2) == 2520 + 11 + 1120 + 1680 + 3


def test_estimate_tokens_counts_only_the_replayed_turns() -> None:
    rec_full = record(FULL, image_size="1K")
    rec_anchor = record(anchored(1), image_size="1K")
    requests = {n: request(n, "abcd") for n in range(1, 6)}
    per_turn = 2 + 1120  # "abcd" is 1 token + 1, plus a 1K model image
    output = 1120
    assert estimate_tokens(NB2, rec_full, requests, 5) == output + 4 * per_turn + 2
    assert estimate_tokens(NB2, rec_anchor, requests, 5) == output + 2 * per_turn + 2


@pytest.mark.parametrize(
    ("profile", "expected_output_tokens"),
    [(NB2, 1120), (PRO, 1120), (FLASH_25, 1290), (profile_for("gemini-9-image"), 1120)],
)
def test_estimate_tokens_uses_the_models_default_size_when_none_is_set(
    profile: ModelProfile, expected_output_tokens: int
) -> None:
    rec = record(image_size=None, aspect_ratio=None)
    requests = {1: request(1, "")}
    assert estimate_tokens(profile, rec, requests, 1) == expected_output_tokens + 1


def test_estimate_tokens_prices_a_size_the_model_lacks_at_its_largest_image() -> None:
    rec = record(image_size="4K", model="gemini-2.5-flash-image")
    assert estimate_tokens(FLASH_25, rec, {1: request(1, "")}, 1) == 1290 + 1


def test_check_fits_accepts_exactly_the_context_window_and_the_inline_limit() -> None:
    check_fits(NB2, NB2.context_tokens, INLINE_REQUEST_LIMIT_BYTES, 7, "s1")


def test_check_fits_refuses_one_token_over_the_context_window_and_suggests_reanchoring() -> None:
    with pytest.raises(HistoryTooLarge) as caught:
        check_fits(PRO, PRO.context_tokens + 1, 1000, 7, "s1")
    message = str(caught.value)
    assert "turn 7" in message
    assert "65537" in message and "65536" in message
    assert "gemini-3-pro-image" in message
    assert "`editqueue fork s1 --at 6 --history first+last:2`" in message


def test_check_fits_refuses_one_byte_over_the_inline_limit() -> None:
    with pytest.raises(HistoryTooLarge) as caught:
        check_fits(NB2, 10, INLINE_REQUEST_LIMIT_BYTES + 1, 3, "s1")
    assert "turn 3" in str(caught.value)
    assert "104.9 MB" in str(caught.value)
    assert "re-anchors, `editqueue fork s1 --at 2 --history first+last:2`" in str(caught.value)


def test_history_too_large_is_a_permanent_error() -> None:
    with pytest.raises(PermanentError):
        check_fits(NB2, NB2.context_tokens + 1, 0, 1, "s1")
