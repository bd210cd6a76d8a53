"""Strict thought signatures: bound to model and bytes, required on replayed model parts."""

from __future__ import annotations

import base64
import copy

import pytest

from emulator import EmulatorConfig, start_emulator
from emulator.signatures import Signer, decode_base64
from tests.emulator.helpers import (
    NB2,
    PRO,
    Json,
    generate,
    image_bytes,
    lineage,
    model_turn,
    request_body,
    unique,
    user,
)


def _first_turn(url: str, model: str = NB2) -> Json:
    response = generate(url, request_body([user(unique("room"))], "1:1", "1K"), model=model)
    assert response.status_code == 200
    return model_turn(response.json())


def _replay(url: str, turn: Json, model: str = NB2) -> tuple[int, str]:
    contents = [user("room"), turn, user(unique("next edit"))]
    response = generate(url, request_body(contents, "1:1", "1K"), model=model)
    message = response.json().get("error", {}).get("message", "")
    return response.status_code, message


def test_every_returned_non_thought_part_carries_a_signature(url: str) -> None:
    parts = _first_turn(url)["parts"]
    assert [("text" in p, "inlineData" in p) for p in parts] == [(True, False), (False, True)]
    assert all(decode_base64(p["thoughtSignature"]) for p in parts)


def test_a_model_turn_replayed_verbatim_is_accepted(url: str) -> None:
    assert _replay(url, _first_turn(url)) == (200, "")


def test_a_missing_image_signature_names_its_content_and_part_position(url: str) -> None:
    turn = _first_turn(url)
    del turn["parts"][1]["thoughtSignature"]
    assert _replay(url, turn) == (
        400,
        "Image part is missing a thought_signature in content position 2, part position 2.",
    )


def test_a_missing_text_signature_is_rejected(url: str) -> None:
    turn = _first_turn(url)
    del turn["parts"][0]["thoughtSignature"]
    status, message = _replay(url, turn)
    assert status == 400
    assert (
        message
        == "Text part is missing a thought_signature in content position 2, part position 1."
    )


def test_re_encoded_image_bytes_invalidate_the_signature(url: str) -> None:
    turn = _first_turn(url)
    data = bytearray(base64.b64decode(turn["parts"][1]["inlineData"]["data"]))
    data[-3] ^= 0x01  # one flipped bit, as a transcode or a storage bug would cause
    turn["parts"][1]["inlineData"]["data"] = base64.b64encode(bytes(data)).decode()
    assert _replay(url, turn) == (
        400,
        "Invalid thought signature in content position 2, part position 2.",
    )


def test_edited_text_invalidates_the_text_signature(url: str) -> None:
    turn = _first_turn(url)
    turn["parts"][0]["text"] += " (edited)"
    status, message = _replay(url, turn)
    assert (status, message.split(" in ")[0]) == (400, "Invalid thought signature")


def test_a_signature_from_another_model_is_rejected(url: str) -> None:
    turn = _first_turn(url, model=NB2)
    status, message = _replay(url, turn, model=PRO)
    assert status == 400
    assert message.startswith("Invalid thought signature")


def test_url_safe_unpadded_base64_is_accepted_for_data_and_signatures(url: str) -> None:
    turn = copy.deepcopy(_first_turn(url))
    for part in turn["parts"]:
        signature = base64.b64decode(part["thoughtSignature"])
        part["thought_signature"] = base64.urlsafe_b64encode(signature).decode().rstrip("=")
        del part["thoughtSignature"]
        if "inlineData" in part:
            raw = base64.b64decode(part["inlineData"]["data"])
            part["inlineData"]["data"] = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert _replay(url, turn) == (200, "")


def test_no_strict_mode_accepts_history_without_signatures() -> None:
    with start_emulator(EmulatorConfig(strict=False)) as emulator:
        turn = _first_turn(emulator.url)
        for part in turn["parts"]:
            del part["thoughtSignature"]
        status, _ = _replay(emulator.url, turn)
    assert status == 200


def test_the_same_seed_accepts_signatures_across_restarts() -> None:
    with start_emulator(EmulatorConfig(seed=99)) as first:
        turn = _first_turn(first.url)
    with start_emulator(EmulatorConfig(seed=99)) as second:
        same_seed = _replay(second.url, turn)
    with start_emulator(EmulatorConfig(seed=100)) as third:
        other_seed = _replay(third.url, turn)
    assert same_seed[0] == 200
    assert other_seed[0] == 400


def test_replayed_history_is_what_the_new_image_derives_from(url: str) -> None:
    turn = _first_turn(url)
    contents = [user("room"), turn, user(unique("next"))]
    reply = generate(url, request_body(contents, "1:1", "1K")).json()
    generation, _ = lineage(image_bytes(reply))
    assert generation == 2


@pytest.mark.parametrize("text", ["aGVsbG8", "aGVsbG8=", "a-_b", "a+/b", " aGVs\nbG8= "])
def test_base64_decodes_in_both_alphabets_with_optional_padding(text: str) -> None:
    assert decode_base64(text)


def test_signer_binds_model_kind_and_content() -> None:
    signer = Signer(b"secret")
    signature = signer.sign(NB2, "image", b"bytes")
    assert signer.verify(f"models/{NB2}", "image", b"bytes", signature)
    assert not signer.verify(NB2, "text", b"bytes", signature)
    assert not signer.verify(NB2, "image", b"bytez", signature)
    assert not signer.verify(NB2, "image", b"bytes", "not base64 at all!")
    assert not Signer(b"other").verify(NB2, "image", b"bytes", signature)
