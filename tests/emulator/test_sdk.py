"""The official google-genai SDK works against the emulator unchanged, over HTTP."""

from __future__ import annotations

import hashlib

import pytest
from google import genai
from google.genai import errors, types

from emulator import RunningEmulator
from tests.emulator.helpers import NB2, lineage, size_of, unique


def _client(emulator: RunningEmulator) -> genai.Client:
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=emulator.url))


def _image(response: types.GenerateContentResponse) -> bytes:
    assert response.candidates and response.candidates[0].content
    parts = response.candidates[0].content.parts or []
    images = [p.inline_data.data for p in parts if p.inline_data and p.inline_data.data]
    assert len(images) == 1
    return images[0]


def test_an_sdk_chat_replays_signed_history_and_each_turn_builds_on_the_last(
    emulator: RunningEmulator,
) -> None:
    config = types.GenerateContentConfig(
        response_modalities=["TEXT", "IMAGE"],
        image_config=types.ImageConfig(aspect_ratio="16:9", image_size="1K"),
    )
    client = _client(emulator)  # keep a reference: a collected client closes its HTTP pool
    chat = client.chats.create(model=NB2, config=config)
    previous = None
    for turn, prompt in enumerate(["A cosy living room", "Walls #8FAF8A", "Make it evening"], 1):
        data = _image(chat.send_message(prompt))
        parent = hashlib.sha256(previous).hexdigest() if previous else "none"
        assert lineage(data) == (turn, parent)
        assert size_of(data) == (1376, 768)
        previous = data
    calls = emulator.app.stats.snapshot()["calls"][-3:]
    assert {(c["model"], c["outcome"]) for c in calls} == {(NB2, "ok")}
    assert {c["api_version"] for c in calls} <= {"v1", "v1beta"}
    history = chat.get_history()
    assert [c.role for c in history] == ["user", "model"] * 3
    assert all(p.thought_signature for p in history[-1].parts or [])


def test_the_sdk_surfaces_an_injected_429_as_a_client_error(emulator: RunningEmulator) -> None:
    client = _client(emulator)
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=NB2, contents=unique("x !fault=429"))
    assert caught.value.code == 429
    assert caught.value.status == "RESOURCE_EXHAUSTED"


def test_the_sdk_rejects_an_invalid_image_size_with_the_emulators_400(
    emulator: RunningEmulator,
) -> None:
    config = types.GenerateContentConfig(image_config=types.ImageConfig(image_size="1k"))
    client = _client(emulator)
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=NB2, contents="x", config=config)
    assert caught.value.code == 400
    assert "Unsupported image size '1k'" in (caught.value.message or "")
