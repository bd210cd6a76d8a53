"""The official SDK's interactions client works against the emulator unchanged, over HTTP."""

from __future__ import annotations

import base64
import hashlib
import time

import pytest
import requests
from google import genai
from google.genai import types
from google.genai._interactions_errors import APIStatusError

from emulator import EmulatorConfig, RunningEmulator, start_emulator
from tests.emulator.conftest import TEST_CONFIG
from tests.emulator.helpers import KEY, NB2, lineage, size_of, unique

FORMAT = {"type": "image", "aspect_ratio": "16:9", "image_size": "1K"}


def _client(emulator: RunningEmulator, key: str = KEY) -> genai.Client:
    return genai.Client(api_key=key, http_options=types.HttpOptions(base_url=emulator.url))


def _image(interaction: object) -> bytes:
    steps = getattr(interaction, "steps", None) or []
    images = [
        c.data
        for s in steps
        if s.type == "model_output"
        for c in s.content or []
        if c.type == "image" and c.data
    ]
    assert len(images) == 1
    return base64.b64decode(images[0])


def test_three_image_turns_chained_by_id_each_build_on_the_last_without_resending_it(
    emulator: RunningEmulator,
) -> None:
    client = _client(emulator)
    previous_id: str | None = None
    previous: bytes | None = None
    emulator.reset()
    for turn, prompt in enumerate(["A cosy living room", "Walls #8FAF8A", "Make it evening"], 1):
        extra = {"previous_interaction_id": previous_id} if previous_id else {}
        interaction = client.interactions.create(
            model=NB2, input=unique(prompt), response_format=FORMAT, **extra
        )
        assert interaction.status == "completed"
        data = _image(interaction)
        parent = hashlib.sha256(previous).hexdigest() if previous else "none"
        assert lineage(data) == (turn, parent)
        assert size_of(data) == (1376, 768)
        assert any(s.type == "thought" and s.signature for s in interaction.steps or [])
        assert interaction.usage is not None and (interaction.usage.total_input_tokens or 0) > 0
        previous_id, previous = interaction.id, data
    calls = emulator.stats()["calls"]
    assert [(c["route"], c["model"], c["images_in"], c["status"]) for c in calls] == [
        ("interactions", NB2, 0, 200)
    ] * 3
    assert previous_id is not None
    fetched = client.interactions.get(previous_id)
    assert fetched.id == previous_id and _image(fetched) == previous


def test_a_deleted_or_foreign_interaction_is_a_404_and_cancel_leaves_a_finished_one(
    emulator: RunningEmulator,
) -> None:
    client = _client(emulator)
    first = client.interactions.create(model=NB2, input=unique("A room"), response_format=FORMAT)
    assert first.id is not None
    assert client.interactions.cancel(first.id).status == "completed"
    other = _client(emulator, "another-key")  # a collected client closes its HTTP pool
    with pytest.raises(APIStatusError) as foreign:
        other.interactions.get(first.id)
    assert foreign.value.status_code == 404
    client.interactions.delete(first.id)
    with pytest.raises(APIStatusError) as deleted:
        client.interactions.create(model=NB2, input="Walls green", previous_interaction_id=first.id)
    assert deleted.value.status_code == 404


def test_an_interaction_expires_after_the_configured_retention() -> None:
    config = EmulatorConfig(seed=7, interaction_ttl_s=0.3)
    with start_emulator(config) as short:
        client = _client(short)
        first = client.interactions.create(model=NB2, input=unique("A room"))
        assert first.id is not None
        time.sleep(0.4)
        with pytest.raises(APIStatusError) as expired:
            client.interactions.get(first.id)
        assert expired.value.status_code == 404


def test_a_seeded_history_with_a_forged_signature_is_refused_like_generate_content(
    emulator: RunningEmulator,
) -> None:
    client = _client(emulator)
    first = client.interactions.create(model=NB2, input=unique("A room"), response_format=FORMAT)
    image = base64.b64encode(_image(first)).decode()
    steps = [
        {"type": "user_input", "content": [{"type": "text", "text": "A room"}]},
        {"type": "thought", "signature": "Zm9yZ2Vk"},
        {
            "type": "model_output",
            "content": [{"type": "image", "mime_type": "image/jpeg", "data": image}],
        },
        {"type": "user_input", "content": [{"type": "text", "text": "Walls green"}]},
    ]
    body = {"model": NB2, "input": steps}
    answer = requests.post(
        f"{emulator.url}/v1beta/interactions",
        json=body,
        headers={"x-goog-api-key": KEY},
        timeout=10,
    )
    assert answer.status_code == 400
    assert "thought signature" in answer.json()["error"]["message"]
    signature = next(s.signature for s in first.steps or [] if s.type == "thought")
    steps[1] = {"type": "thought", "signature": signature}
    good = requests.post(
        f"{emulator.url}/v1beta/interactions",
        json=body,
        headers={"x-goog-api-key": KEY},
        timeout=10,
    )
    assert good.status_code == 200, good.text
    assert good.json()["status"] == "completed"
    assert TEST_CONFIG.strict
