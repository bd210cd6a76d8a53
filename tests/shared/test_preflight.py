"""Start-up checks: each refusal names its setting; the emulator that accepts any key is allowed."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from emulator import EmulatorConfig, start_emulator
from shared.config import Settings, load_settings
from shared.preflight import (
    EMULATOR_PLACEHOLDER_KEY,
    Finding,
    StartupRefused,
    broker_finding,
    checked_settings,
    key_finding,
    safe_url,
    store_finding,
)


def settings_of(tmp_path: Path, **overrides: object) -> Settings:
    base: dict[str, object] = {
        "broker_url": "memory://",
        "store_url": f"file://{tmp_path / 'store'}",
        "api_key": None,
    }
    return load_settings(**{**base, **overrides})


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed when the block ends: nothing listens


@pytest.fixture(scope="module")
def any_key_emulator() -> Iterator[str]:
    with start_emulator(EmulatorConfig(port=0)) as running:
        yield running.url


def test_a_set_key_passes_without_calling_anything(tmp_path: Path) -> None:
    settings = settings_of(tmp_path, api_key=SecretStr("k"), api_base_url="http://127.0.0.1:1")
    finding, effective = key_finding(settings)
    assert finding.ok and effective is settings


@pytest.mark.parametrize("key", [None, "", "   "])
def test_an_empty_key_for_googles_api_is_refused_naming_the_setting(
    tmp_path: Path, key: str | None
) -> None:
    settings = settings_of(tmp_path, api_key=None if key is None else SecretStr(key))
    finding, _ = key_finding(settings)
    assert not finding.ok and not finding.retryable
    assert finding.setting == "GEMINI_API_KEY"
    assert "every turn would fail with 403" in finding.detail
    assert "EDITQUEUE_API_BASE_URL=http://127.0.0.1:8765" in finding.detail


def test_an_empty_key_is_fine_for_the_bundled_emulator_which_gets_a_placeholder(
    tmp_path: Path, any_key_emulator: str
) -> None:
    settings = settings_of(tmp_path, api_base_url=any_key_emulator)
    finding, effective = key_finding(settings)
    assert finding.ok and "accepts any key" in finding.detail
    assert effective.api_key is not None
    assert effective.api_key.get_secret_value() == EMULATOR_PLACEHOLDER_KEY


def test_an_emulator_that_wants_its_own_key_is_refused(tmp_path: Path) -> None:
    with start_emulator(EmulatorConfig(port=0, api_key="only-this")) as running:
        finding, _ = key_finding(settings_of(tmp_path, api_base_url=running.url))
    assert not finding.ok and "accepts only its --api-key" in finding.detail


def test_an_empty_key_for_an_address_that_is_not_the_emulator_is_refused(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    finding, _ = key_finding(settings_of(tmp_path, api_base_url=url))
    assert not finding.ok and finding.retryable  # it may be an emulator still starting
    assert f"EDITQUEUE_API_BASE_URL={url} did not answer as the bundled emulator" in finding.detail


def test_an_unreachable_redis_is_refused_naming_the_broker_url_without_its_password(
    tmp_path: Path,
) -> None:
    url = f"redis://:hunter2@127.0.0.1:{closed_port()}/0"
    finding = broker_finding(settings_of(tmp_path, broker_url=url))
    assert not finding.ok and finding.setting == "EDITQUEUE_BROKER_URL"
    assert "is unreachable" in finding.detail and "hunter2" not in finding.detail


def test_a_password_never_reaches_a_message() -> None:
    assert safe_url("redis://u:secret@h:6379/0") == "redis://u:***@h:6379/0"
    assert safe_url("redis://h:6379/0") == "redis://h:6379/0"


def test_a_local_store_must_be_a_directory_this_user_can_create(tmp_path: Path) -> None:
    assert store_finding(settings_of(tmp_path)).ok
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")

    finding = store_finding(settings_of(tmp_path, store_url=f"file://{blocker}/store"))

    assert not finding.ok and finding.setting == "EDITQUEUE_STORE_URL"
    assert f"cannot create {blocker}/store" in finding.detail


def test_an_unknown_store_scheme_is_refused(tmp_path: Path) -> None:
    finding = store_finding(settings_of(tmp_path, store_url="ftp://x/y"))
    assert not finding.ok and "s3://bucket/prefix" in finding.detail


def test_a_service_still_starting_is_waited_for_then_refused(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{closed_port()}/0"
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    with pytest.raises(StartupRefused, match="worker not started: EDITQUEUE_BROKER_URL"):
        checked_settings(
            settings_of(tmp_path, broker_url=url, api_key=SecretStr("k")),
            3.0,
            sleep=sleep,
            clock=lambda: now[0],
        )
    assert len(sleeps) == 3


def test_a_missing_key_is_refused_at_once_even_with_a_wait(tmp_path: Path) -> None:
    sleeps: list[float] = []
    with pytest.raises(StartupRefused, match="GEMINI_API_KEY is empty"):
        checked_settings(settings_of(tmp_path), 60.0, sleep=sleeps.append)
    assert sleeps == []


def test_the_finding_line_says_ok_or_fail_and_the_setting() -> None:
    assert Finding("X", True, "fine").line() == "ok   X: fine"
    assert Finding("X", False, "bad").line() == "FAIL X: bad"
