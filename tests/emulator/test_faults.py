"""Injected faults have the shapes the real API produces, by trigger and by seeded rate."""

from __future__ import annotations

import json
import time

import pytest
import requests
from google import genai
from google.genai import errors, types
from urllib3.exceptions import ProtocolError

from emulator import EmulatorConfig, start_emulator
from emulator.config import FAULT_NAMES, parse_fault_rate
from emulator.faults import duration
from tests.emulator.conftest import TEST_CONFIG
from tests.emulator.helpers import (
    error_of,
    generate,
    model_turn,
    request_body,
    unique,
    user,
)

RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"


def _call(url: str, fault: str, timeout: float = 20) -> requests.Response:
    return generate(url, request_body([user(unique(f"edit !fault={fault}"))]), timeout=timeout)


def _details(response: requests.Response) -> dict[str, dict[str, object]]:
    return {d["@type"]: d for d in error_of(response).get("details", [])}


def test_a_429_carries_retry_info_and_a_per_minute_quota_failure(url: str) -> None:
    response = _call(url, "429")
    details = _details(response)
    assert (response.status_code, error_of(response)["status"]) == (429, "RESOURCE_EXHAUSTED")
    assert details[RETRY_INFO]["retryDelay"] == "1.5s"
    violation = details[QUOTA_FAILURE]["violations"][0]  # type: ignore[index]
    assert "PerMinute" in violation["quotaId"]
    assert "Retry-After" not in response.headers


def test_a_daily_quota_429_names_the_per_day_quota(url: str) -> None:
    response = _call(url, "429daily")
    violation = _details(response)[QUOTA_FAILURE]["violations"][0]  # type: ignore[index]
    assert response.status_code == 429
    assert violation["quotaId"] == "GenerateRequestsPerDayPerProjectPerModel"


def test_a_bare_429_has_no_details(url: str) -> None:
    response = _call(url, "429bare")
    assert response.status_code == 429
    assert "details" not in error_of(response)


@pytest.mark.parametrize(
    ("fault", "status", "google_status"),
    [
        ("500", 500, "INTERNAL"),
        ("503", 503, "UNAVAILABLE"),
        ("504", 504, "DEADLINE_EXCEEDED"),
        ("400", 400, "INVALID_ARGUMENT"),
        ("403", 403, "PERMISSION_DENIED"),
    ],
)
def test_http_error_faults_have_google_shaped_bodies(
    url: str, fault: str, status: int, google_status: str
) -> None:
    response = _call(url, fault)
    assert (response.status_code, error_of(response)["status"]) == (status, google_status)


@pytest.mark.parametrize(("fault", "status"), [("502", 502), ("notjson", 200)])
def test_html_faults_send_a_body_that_is_not_json(url: str, fault: str, status: int) -> None:
    response = _call(url, fault)
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)


def test_truncated_json_ends_mid_document(url: str) -> None:
    response = _call(url, "truncated")
    assert response.status_code == 200
    assert response.text.startswith('{"candidates"')
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)


def test_a_hang_closes_the_connection_without_a_reply_after_hang_s(url: str) -> None:
    started = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        _call(url, "hang", timeout=5)
    assert time.monotonic() - started >= TEST_CONFIG.hang_s * 0.9


def test_a_hang_outlasts_a_short_client_timeout(url: str) -> None:
    with pytest.raises(requests.ReadTimeout):
        _call(url, "hang", timeout=0.1)


def test_a_drip_sends_headers_then_bytes_too_slowly_to_finish(url: str) -> None:
    body = request_body([user(unique("edit !fault=drip"))])
    endpoint = f"{url}/v1beta/models/gemini-3.1-flash-image:generateContent"
    received = 0
    with requests.post(
        endpoint, json=body, headers={"x-goog-api-key": "k"}, stream=True, timeout=5
    ) as response:
        declared = int(response.headers["Content-Length"])
        assert response.status_code == 200
        try:
            for chunk in response.raw.stream(1, decode_content=False):
                received += len(chunk)
        except ProtocolError:
            pass  # the server closes at the hang cap, mid-body: an incomplete read
    ceiling = TEST_CONFIG.hang_s / TEST_CONFIG.drip_interval_s + 2
    assert 0 < received <= ceiling < declared


def test_a_blocked_prompt_has_prompt_feedback_and_no_candidates(url: str) -> None:
    reply = _call(url, "blocked").json()
    assert "candidates" not in reply
    assert reply["promptFeedback"]["blockReason"] == "SAFETY"


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("image_safety", "IMAGE_SAFETY"), ("prohibited", "IMAGE_PROHIBITED_CONTENT")],
)
def test_safety_faults_finish_without_content(url: str, fault: str, reason: str) -> None:
    candidate = _call(url, fault).json()["candidates"][0]
    assert candidate["finishReason"] == reason
    assert "content" not in candidate


@pytest.mark.parametrize(("fault", "reason"), [("noimage", "NO_IMAGE"), ("textonly", "STOP")])
def test_text_only_faults_return_signed_text_and_no_image(
    url: str, fault: str, reason: str
) -> None:
    reply = _call(url, fault).json()
    parts = model_turn(reply)["parts"]
    assert reply["candidates"][0]["finishReason"] == reason
    assert [("text" in p, "thoughtSignature" in p, "inlineData" in p) for p in parts] == [
        (True, True, False)
    ]
    assert reply["usageMetadata"]["candidatesTokensDetails"][0]["modality"] == "TEXT"


def test_no_candidate_has_neither_candidates_nor_feedback(url: str) -> None:
    reply = _call(url, "nocandidate").json()
    assert "candidates" not in reply and "promptFeedback" not in reply
    assert "usageMetadata" in reply


def test_a_counted_trigger_fails_the_first_k_calls_of_that_text_only(url: str) -> None:
    body = request_body([user(unique("paint !fault=503x2"))])
    other = request_body([user(unique("other !fault=503x2"))])
    statuses = [generate(url, body).status_code for _ in range(4)]
    assert statuses == [503, 503, 200, 200]
    assert generate(url, other).status_code == 503  # counted per distinct text


def test_a_trigger_applies_to_every_call_without_a_count(url: str) -> None:
    body = request_body([user(unique("paint !fault=500"))])
    assert [generate(url, body).status_code for _ in range(3)] == [500, 500, 500]


def test_an_unknown_trigger_name_is_a_clear_400(url: str) -> None:
    response = _call(url, "nonsense")
    assert response.status_code == 400
    assert "Unknown emulator fault 'nonsense'" in error_of(response)["message"]


def _statuses(seed: int, calls: int) -> list[int]:
    config = EmulatorConfig(seed=seed, fault_rates={"503": 0.3, "429bare": 0.2})
    with start_emulator(config) as emulator:
        return [generate(emulator.url, request_body([user("x")])).status_code for _ in range(calls)]


def test_seeded_fault_rates_are_reproducible_and_roughly_honoured() -> None:
    first, again, other = _statuses(5, 40), _statuses(5, 40), _statuses(6, 40)
    assert first == again
    assert first != other
    assert 8 <= first.count(503) + first.count(429) <= 32
    assert set(first) == {200, 429, 503}


def test_latency_is_applied_to_successful_calls() -> None:
    with start_emulator(EmulatorConfig(latency_s=0.3, latency_jitter_s=0.05, seed=1)) as emulator:
        started = time.monotonic()
        response = generate(emulator.url, request_body([user("x")]))
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.25


@pytest.mark.parametrize(
    ("rates", "problem"),
    [({"nope": 0.1}, "unknown fault"), ({"503": 0.7, "500": 0.6}, "sum to <= 1")],
)
def test_bad_fault_rates_are_refused_at_configuration(
    rates: dict[str, float], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        EmulatorConfig(fault_rates=rates)


def test_fault_rate_options_parse_into_name_and_rate() -> None:
    assert parse_fault_rate("429=0.25") == ("429", 0.25)
    with pytest.raises(ValueError, match="NAME=RATE"):
        parse_fault_rate("429")
    assert "hang" in FAULT_NAMES


@pytest.mark.parametrize(("seconds", "text"), [(2.0, "2s"), (1.5, "1.5s"), (0.25, "0.25s")])
def test_retry_delays_are_protobuf_durations(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_the_flex_tier_adds_its_latency_and_sheds_at_its_rate_with_503() -> None:
    config = EmulatorConfig(seed=3, flex_latency_s=0.2, flex_shed_rate=0.5)
    with start_emulator(config) as running:
        client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=running.url))
        outcomes = []
        for n in range(12):
            started = time.monotonic()
            try:
                client.models.generate_content(
                    model="gemini-3.1-flash-image",
                    contents=f"room {n}",
                    config=types.GenerateContentConfig(service_tier="flex"),
                )
                outcomes.append(("ok", time.monotonic() - started))
            except errors.ServerError as exc:
                assert exc.code == 503 and exc.status == "UNAVAILABLE"
                outcomes.append(("shed", time.monotonic() - started))
        client.models.generate_content(model="gemini-3.1-flash-image", contents="standard")
        stats = running.stats()
    kinds = [kind for kind, _ in outcomes]
    assert 2 <= kinds.count("shed") <= 10 and "ok" in kinds
    assert min(seconds for _, seconds in outcomes) >= 0.2
    assert stats["by_tier"] == {"flex": 12, "standard": 1}
    assert stats["by_outcome"]["flex_shed"] == kinds.count("shed")


def test_an_unknown_service_tier_is_a_400() -> None:
    with start_emulator(EmulatorConfig()) as running:
        reply = requests.post(
            f"{running.url}/v1beta/models/gemini-3.1-flash-image:generateContent",
            headers={"x-goog-api-key": "k"},
            json={"contents": [{"role": "user", "parts": [{"text": "x"}]}], "serviceTier": "cheap"},
            timeout=10,
        )
    assert reply.status_code == 400
    assert "service_tier" in reply.json()["error"]["message"]
