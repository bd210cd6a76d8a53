"""The emulator rejects what the real API rejects, with Google-shaped 4xx errors."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
import requests

from emulator import EmulatorConfig, start_emulator
from shared.catalog import pixel_size
from tests.emulator.helpers import (
    NB2,
    PRO,
    error_of,
    generate,
    image_bytes,
    jpeg,
    lineage,
    request_body,
    size_of,
    unique,
    user,
)


def test_a_call_without_a_key_is_permission_denied(url: str) -> None:
    response = generate(url, request_body([user("hello")]), key=None)
    assert response.status_code == 403
    assert error_of(response)["status"] == "PERMISSION_DENIED"


def test_a_key_in_the_query_string_is_accepted(url: str) -> None:
    endpoint = f"{url}/v1beta/models/{NB2}:generateContent?key=query-key"
    response = requests.post(endpoint, json=request_body([user("hello")]), timeout=10)
    assert response.status_code == 200


def test_a_wrong_key_is_invalid_and_never_echoed() -> None:
    with start_emulator(EmulatorConfig(api_key="right-key")) as emulator:
        wrong = generate(emulator.url, request_body([user("hi")]), key="secret-wrong-key")
        right = generate(emulator.url, request_body([user("hi")]), key="right-key")
    error = error_of(wrong)
    assert (wrong.status_code, error["status"]) == (400, "INVALID_ARGUMENT")
    assert error["details"][0]["reason"] == "API_KEY_INVALID"
    assert "secret-wrong-key" not in wrong.text and "right-key" not in wrong.text
    assert right.status_code == 200


def test_a_body_that_is_not_json_is_invalid_argument(url: str) -> None:
    response = generate(url, b"{not json")
    assert response.status_code == 400
    assert error_of(response)["message"].startswith("Invalid JSON payload received.")


def test_empty_contents_are_rejected(url: str) -> None:
    response = generate(url, {"contents": []})
    assert response.status_code == 400
    assert "contents is not specified" in error_of(response)["message"]


def _model(text: str) -> dict[str, object]:
    return {"role": "model", "parts": [{"text": text}]}


@pytest.mark.parametrize(
    ("contents", "expected"),
    [
        ([_model("hi"), user("edit")], "start with a user turn"),
        ([user("a"), user("b")], "alternate between user and model"),
        ([user("a"), _model("b")], "last content of a request has role user"),
        ([{"role": "assistant", "parts": [{"text": "x"}]}], "valid role: user, model"),
        ([{"role": "user", "parts": []}], "parts must not be empty"),
    ],
)
def test_bad_role_order_is_rejected_with_a_clear_message(
    url: str, contents: list[dict[str, object]], expected: str
) -> None:
    response = generate(url, request_body(contents))
    assert response.status_code == 400
    assert expected in error_of(response)["message"]


@pytest.mark.parametrize(
    ("model", "aspect", "size"),
    [(PRO, "16:9", "512"), (PRO, "1:8", "1K"), (NB2, "16:9", "1k"), (NB2, "7:3", "1K")],
)
def test_image_config_the_model_does_not_support_is_rejected(
    url: str, model: str, aspect: str, size: str
) -> None:
    response = generate(url, request_body([user("x")], aspect, size), model=model)
    assert response.status_code == 400
    assert "Unsupported" in error_of(response)["message"]


def test_nb2_accepts_the_extreme_aspect_and_512_size(url: str) -> None:
    response = generate(url, request_body([user("x")], "1:8", "512"), model=NB2)
    assert response.status_code == 200


def test_a_payload_over_the_limit_is_rejected() -> None:
    big = request_body([user("x", b"\xff" * 20_000)])
    with start_emulator(EmulatorConfig(max_request_bytes=10_000)) as emulator:
        response = generate(emulator.url, big)
        health = requests.get(f"{emulator.url}/healthz", timeout=5)
    assert response.status_code == 400
    assert "payload size exceeds the limit: 10000 bytes" in error_of(response)["message"]
    assert health.status_code == 200


def _snake_body(image: bytes, image_size: str) -> dict[str, object]:
    data = base64.b64encode(image).decode()
    inline = {"inline_data": {"mime_type": "image/jpeg", "data": data}}
    return {
        "contents": [{"role": "user", "parts": [{"text": "x"}, inline]}],
        "generation_config": {"image_config": {"aspect_ratio": "1:8", "image_size": image_size}},
    }


def test_snake_case_fields_are_read(url: str) -> None:
    reference = jpeg(320, 180)
    accepted = generate(url, _snake_body(reference, "512"))
    rejected = generate(url, _snake_body(reference, "FOO"))
    assert accepted.status_code == 200
    assert lineage(image_bytes(accepted.json()))[1] == hashlib.sha256(reference).hexdigest()
    assert size_of(image_bytes(accepted.json())) == pixel_size("1:8", "512")
    assert rejected.status_code == 400
    assert "'FOO'" in error_of(rejected)["message"]


def test_more_than_one_candidate_is_rejected(url: str) -> None:
    response = generate(url, request_body([user("x")], candidateCount=2))
    assert response.status_code == 400
    assert "Multiple candidates is not enabled" in error_of(response)["message"]


def test_bytes_that_are_not_an_image_are_rejected(url: str) -> None:
    response = generate(url, request_body([user(unique("edit"), b"definitely not an image")]))
    assert response.status_code == 400
    assert "Unable to process input image" in error_of(response)["message"]


def test_broken_base64_is_rejected_naming_the_field(url: str) -> None:
    body = request_body([user("x")])
    body["contents"][0]["parts"].append({"inlineData": {"mimeType": "image/png", "data": "a$b"}})
    response = generate(url, body)
    assert response.status_code == 400
    assert "contents[0].parts[1].inline_data.data" in error_of(response)["message"]


@pytest.mark.parametrize("version", ["v1", "v1beta"])
def test_generate_content_is_served_under_both_api_versions(url: str, version: str) -> None:
    response = generate(url, request_body([user("x")]), version=version)
    assert response.status_code == 200
    assert response.json()["candidates"][0]["finishReason"] == "STOP"


def test_an_unknown_path_is_a_google_shaped_404(url: str) -> None:
    response = requests.post(
        f"{url}/v1beta/models/{NB2}:streamGenerateContent?key=k", data=json.dumps({}), timeout=5
    )
    assert response.status_code == 404
    assert error_of(response)["status"] == "NOT_FOUND"
    assert "key=k" not in response.text
