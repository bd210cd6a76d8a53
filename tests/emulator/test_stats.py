"""The admin endpoints count calls by outcome so tests can check paid calls and rates."""

from __future__ import annotations

import time

import requests

from emulator import EmulatorConfig, start_emulator
from tests.emulator.helpers import generate, request_body, unique, user


def test_stats_count_calls_by_outcome_and_status_and_reset_clears_them() -> None:
    with start_emulator() as emulator:
        before = time.time()
        generate(emulator.url, request_body([user("one")]))
        generate(emulator.url, request_body([user("two")]))
        generate(emulator.url, request_body([user(unique("x !fault=503"))]))
        generate(emulator.url, request_body([user("no key")]), key=None)
        stats = requests.get(f"{emulator.url}/emulator/stats", timeout=5).json()
        reset = requests.post(f"{emulator.url}/emulator/reset", timeout=5)
        after_reset = requests.get(f"{emulator.url}/emulator/stats", timeout=5).json()
    assert stats["total_calls"] == 4
    assert stats["successes"] == 2
    assert stats["by_outcome"] == {"ok": 2, "fault:503": 1, "auth": 1}
    assert stats["by_status"] == {"200": 2, "503": 1, "403": 1}
    assert all(before <= c["start"] <= c["end"] <= time.time() for c in stats["calls"])
    assert [c["generation"] for c in stats["calls"]][:2] == [1, 1]
    assert reset.status_code == 200
    assert after_reset["total_calls"] == 0 and after_reset["calls"] == []


def test_reset_also_restarts_counted_triggers() -> None:
    body = request_body([user("paint !fault=503x1")])
    with start_emulator() as emulator:
        first = [generate(emulator.url, body).status_code for _ in range(2)]
        requests.post(f"{emulator.url}/emulator/reset", timeout=5)
        second = generate(emulator.url, body).status_code
    assert first == [503, 200]
    assert second == 503


def test_healthz_answers_without_a_key(url: str) -> None:
    response = requests.get(f"{url}/healthz", timeout=5)
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_info_names_the_emulator_and_whether_it_accepts_any_key() -> None:
    with start_emulator() as open_emulator:
        anyone = requests.get(f"{open_emulator.url}/emulator/info", timeout=5)
    with start_emulator(EmulatorConfig(api_key="only-this")) as keyed:
        fixed = requests.get(f"{keyed.url}/emulator/info", timeout=5)
    assert anyone.json() == {"service": "editqueue-emulator", "accepts_any_key": True}
    assert fixed.json() == {"service": "editqueue-emulator", "accepts_any_key": False}
