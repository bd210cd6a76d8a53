"""Which call a turn makes per transport; what Interactions bodies and answers hold."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest

from shared.errors import Blocked, NoImage
from shared.history import BlobData
from shared.models import Transport
from shared.responses import check_response
from shared.session_spec import HistoryPolicy
from shared.sessions import SessionSnapshot
from tests.shared.test_history import NOW, blob, record, request, result
from worker.interaction_payload import expires_at
from worker.interactions import _is_gone, parse_interaction
from worker.transport import Mode, first_plan, orphaned, seed_plan


def snapshot(n: int, transport: Transport = Transport.INTERACTIONS, **ids: str) -> SessionSnapshot:
    rec = record(anchored := HistoryPolicy(anchor="first", keep_last=1))
    assert rec.history == anchored
    results = {
        i: result(i).model_copy(
            update={
                "interaction_id": ids.get(f"t{i}"),
                "interaction_expires_at": NOW + timedelta(days=1),
            }
        )
        for i in range(1, n)
    }
    return SessionSnapshot(
        record=rec.model_copy(update={"transport": transport}),
        requests={i: request(i, images=[blob(7)] if i == 1 else None) for i in range(1, n + 1)},
        results=results,
    )


def _images(payload: object) -> list[BlobData]:
    found: list[BlobData] = []

    def walk(value: object) -> None:
        if isinstance(value, BlobData):
            found.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(payload)
    return found


def test_a_live_chain_sends_only_the_new_prompt_after_the_previous_id() -> None:
    snap = snapshot(4, t3="int-3")
    plan = first_plan(snap, 4, "standard", NOW)
    assert plan.mode is Mode.CHAIN
    assert plan.payload["previous_interaction_id"] == "int-3"
    assert plan.payload["input"] == [
        {"type": "user_input", "content": [{"type": "text", "text": "prompt 4"}]}
    ]
    assert plan.payload["response_format"] == {
        "type": "image",
        "aspect_ratio": "16:9",
        "image_size": "2K",
    }
    # The server holds the whole conversation: tokens are estimated without re-anchoring.
    assert plan.token_record(snap.record).history.is_full


def test_a_chain_past_its_expiry_or_without_an_id_is_seeded_from_the_store() -> None:
    snap = snapshot(4, t3="int-3")
    later = NOW + timedelta(days=2)
    assert first_plan(snap, 4, "standard", later).mode is Mode.SEED
    assert first_plan(snapshot(4), 4, "standard", NOW).mode is Mode.SEED


def test_a_seeded_interaction_replays_the_policys_turns_with_each_images_signature() -> None:
    plan = seed_plan(snapshot(4), 4, "flex")
    steps = plan.payload["input"]
    assert "previous_interaction_id" not in plan.payload
    assert plan.payload["service_tier"] == "flex"
    # anchor first + keep_last 1: turns 1 and 3, then turn 4's input.
    assert [s["type"] for s in steps] == [
        "user_input",
        "thought",
        "model_output",
        "user_input",
        "thought",
        "model_output",
        "user_input",
    ]
    assert [steps[1]["signature"], steps[4]["signature"]] == ["sig-img-1", "sig-img-3"]
    assert [b.sha256[-4:] for b in _images(plan.payload)] == ["0007", "03e9", "03eb"]


def test_a_replay_session_still_sends_generate_content_with_the_history() -> None:
    plan = first_plan(snapshot(3, Transport.REPLAY, t2="int-2"), 3, "flex", NOW)
    assert plan.mode is Mode.REPLAY and not plan.interactions
    assert plan.payload["serviceTier"] == "flex"
    assert len(plan.payload["contents"]) == 5  # turns 1 and 2 (user + model), then turn 3


def _answer(**doc: object) -> bytes:
    return json.dumps({"id": "int-9", "created": "2026-11-27T12:00:00Z", **doc}).encode()


def test_an_answer_keeps_the_thought_steps_signature_on_its_image() -> None:
    data = base64.b64encode(b"\xff\xd8\xff\xe0 jpeg").decode()
    steps = [
        {"type": "thought", "signature": "c2ln"},
        {
            "type": "model_output",
            "content": [
                {"type": "text", "text": "Here it is"},
                {"type": "image", "mime_type": "image/jpeg", "data": data},
            ],
        },
    ]
    usage = {"total_input_tokens": 1200, "total_output_tokens": 1120, "total_tokens": 2400}
    answer = parse_interaction(_answer(status="completed", steps=steps, usage=usage))
    assert answer.interaction_id == "int-9" and answer.finish_reason == "STOP"
    assert [(p.text, p.image, p.thought_signature) for p in answer.parts] == [
        ("Here it is", None, None),
        (None, b"\xff\xd8\xff\xe0 jpeg", "c2ln"),
    ]
    assert answer.usage["promptTokenCount"] == 1200
    assert answer.usage["candidatesTokenCount"] == 1120
    assert expires_at(answer.interaction_created, NOW, 60.0) == NOW + timedelta(seconds=60)


@pytest.mark.parametrize(
    ("code", "error"), [("IMAGE_SAFETY", Blocked), ("NO_IMAGE", NoImage), (None, NoImage)]
)
def test_a_failed_interaction_is_classified_by_its_error_code(
    code: str | None, error: type[Exception]
) -> None:
    errors = [{"code": code, "message": "stopped"}] if code else []
    answer = parse_interaction(_answer(status="failed", errors=errors))
    with pytest.raises(error):
        check_response(answer)


@pytest.mark.parametrize(
    ("status", "body", "gone"),
    [
        (404, b"{}", True),
        (403, b"{}", True),
        (400, b'{"error": {"message": "bad previous_interaction_id"}}', True),
        (400, b'{"error": {"message": "bad image size"}}', False),
        (429, b"{}", False),
    ],
)
def test_which_refusals_of_a_chained_call_mean_the_chain_is_gone(
    status: int, body: bytes, gone: bool
) -> None:
    assert _is_gone(status, body) is gone


def test_a_losing_duplicates_own_interaction_is_the_one_to_delete() -> None:
    won = result(2).model_copy(update={"interaction_id": "int-a"})
    mine = parse_interaction(_answer(id="int-b", status="completed"))
    assert orphaned(mine, won) == "int-b"
    same = parse_interaction(_answer(id="int-a", status="completed"))
    assert orphaned(same, won) is None
