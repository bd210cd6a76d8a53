"""Settings from EDITQUEUE_* variables, GEMINI_API_KEY and `.env`; the key never shows."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from shared.config import (
    DEFAULT_API_BASE_URL,
    DEFAULT_BROKER_URL,
    DEFAULT_STORE_URL,
    Settings,
    load_settings,
)

KEY = "AIza-unit-test-secret-7f3c"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No EDITQUEUE_*/GEMINI_API_KEY from the outer environment and no stray `.env`."""
    for name in list(os.environ):
        if name.startswith("EDITQUEUE_") or name == "GEMINI_API_KEY":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults_without_any_environment() -> None:
    settings = load_settings()
    assert settings.broker_url == DEFAULT_BROKER_URL == "redis://127.0.0.1:6379/0"
    assert settings.store_url == DEFAULT_STORE_URL
    assert settings.api_base_url == DEFAULT_API_BASE_URL
    assert settings.api_base_url == "https://generativelanguage.googleapis.com"
    assert settings.api_key is None
    assert settings.model == "gemini-3.1-flash-image"
    assert settings.api_timeout_s == 35.0
    assert settings.visibility_timeout_s == 300
    assert settings.s3_endpoint_url is None
    assert settings.price_overrides == {}


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("EDITQUEUE_BROKER_URL", "redis://redis:6379/2", "broker_url", "redis://redis:6379/2"),
        ("EDITQUEUE_STORE_URL", "s3://bucket/prefix", "store_url", "s3://bucket/prefix"),
        ("EDITQUEUE_S3_ENDPOINT_URL", "http://moto:5000", "s3_endpoint_url", "http://moto:5000"),
        (
            "EDITQUEUE_API_BASE_URL",
            "http://127.0.0.1:8080",
            "api_base_url",
            "http://127.0.0.1:8080",
        ),
        ("EDITQUEUE_MODEL", "gemini-3-pro-image-preview", "model", "gemini-3-pro-image-preview"),
        ("EDITQUEUE_API_TIMEOUT_S", "12.5", "api_timeout_s", 12.5),
        ("EDITQUEUE_VISIBILITY_TIMEOUT_S", "900", "visibility_timeout_s", 900),
        ("EDITQUEUE_MAX_ATTEMPTS", "9", "max_attempts", 9),
        ("EDITQUEUE_NO_IMAGE_ATTEMPTS", "2", "no_image_attempts", 2),
        ("EDITQUEUE_BLOB_CACHE_DIR", "/var/cache/eq", "blob_cache_dir", "/var/cache/eq"),
        ("EDITQUEUE_BACKOFF_BASE_S", "0.5", "backoff_base_s", 0.5),
        ("EDITQUEUE_BACKOFF_MAX_S", "20", "backoff_max_s", 20.0),
        (
            "EDITQUEUE_PRICE_OVERRIDES",
            '{"gemini-3-pro-image": {"4K": 0.3}}',
            "price_overrides",
            {"gemini-3-pro-image": {"4K": 0.3}},
        ),
        ("editqueue_model", "lower-case-works", "model", "lower-case-works"),
        # The HTTP API's fields are http_* in Python; the documented variables stay EDITQUEUE_API_*.
        ("EDITQUEUE_API_MAX_BODY_BYTES", "1000", "http_max_body_bytes", 1000),
        ("EDITQUEUE_API_PRESIGN_IMAGES", "false", "http_presign_images", False),
        (
            "EDITQUEUE_API_PUBLIC_URL",
            "https://eq.example.test",
            "http_public_url",
            "https://eq.example.test",
        ),
        ("EDITQUEUE_API_HEADER_TIMEOUT_S", "2", "http_header_timeout_s", 2.0),
        ("EDITQUEUE_API_BODY_TIMEOUT_S", "3", "http_body_timeout_s", 3.0),
        ("EDITQUEUE_API_MAX_CONCURRENCY", "4", "http_max_concurrency", 4),
        ("EDITQUEUE_API_MAX_BODY_BYTES_IN_FLIGHT", "5000", "http_max_body_bytes_in_flight", 5000),
        ("EDITQUEUE_API_SHUTDOWN_S", "6", "http_shutdown_s", 6.0),
        ("editqueue_api_max_concurrency", "7", "http_max_concurrency", 7),
    ],
)
def test_each_setting_comes_from_its_environment_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str, expected: object
) -> None:
    monkeypatch.setenv(variable, value)
    assert getattr(load_settings(), field) == expected


def test_the_api_key_comes_from_gemini_api_key_as_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    settings = load_settings()
    assert isinstance(settings.api_key, SecretStr)
    assert settings.api_key.get_secret_value() == KEY


def test_the_api_key_never_shows_in_repr_str_or_dumps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    settings = load_settings()
    assert settings.api_key is not None
    for text in (
        repr(settings),
        str(settings),
        f"{settings}",
        repr(settings.api_key),
        str(settings.api_key),
        settings.model_dump_json(),
        str(settings.model_dump()),
    ):
        assert KEY not in text
    assert "**********" in repr(settings)


def test_the_api_key_can_be_passed_by_field_name() -> None:
    settings = load_settings(api_key=KEY)
    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == KEY
    assert KEY not in repr(settings)


def test_keyword_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDITQUEUE_MODEL", "from-env")
    monkeypatch.setenv("EDITQUEUE_BROKER_URL", "redis://env/0")
    settings = load_settings(model="from-code")
    assert settings.model == "from-code"
    assert settings.broker_url == "redis://env/0"


def test_a_dotenv_file_in_the_working_directory_is_read(clean_env: Path) -> None:
    (clean_env / ".env").write_text(
        f"EDITQUEUE_MODEL=from-dotenv\nGEMINI_API_KEY={KEY}\nOTHER_TOOL_SETTING=ignored\n"
    )
    settings = load_settings()
    assert settings.model == "from-dotenv"
    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == KEY


def test_the_environment_wins_over_the_dotenv_file(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_env / ".env").write_text("EDITQUEUE_MODEL=from-dotenv\n")
    monkeypatch.setenv("EDITQUEUE_MODEL", "from-env")
    assert load_settings().model == "from-env"


def test_unrelated_editqueue_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDITQUEUE_NOT_A_SETTING", "x")
    assert not hasattr(load_settings(), "not_a_setting")


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("EDITQUEUE_API_TIMEOUT_S", "0", "api_timeout_s"),
        ("EDITQUEUE_API_TIMEOUT_S", "soon", "api_timeout_s"),
        ("EDITQUEUE_VISIBILITY_TIMEOUT_S", "-1", "visibility_timeout_s"),
        ("EDITQUEUE_MAX_ATTEMPTS", "0", "max_attempts"),
        ("EDITQUEUE_NO_IMAGE_ATTEMPTS", "0", "no_image_attempts"),
        ("EDITQUEUE_BACKOFF_BASE_S", "0", "backoff_base_s"),
        ("EDITQUEUE_PRICE_OVERRIDES", "not json", "price_overrides"),
    ],
)
def test_an_invalid_value_is_refused_and_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    monkeypatch.setenv(variable, value)
    with pytest.raises((ValidationError, ValueError)) as caught:
        load_settings()
    assert field in str(caught.value)
    assert KEY not in str(caught.value)


def test_the_http_api_tokens_come_from_their_documented_variable_as_a_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EDITQUEUE_API_TOKENS", "tok-0123456789abcdef=acme")
    settings = load_settings()
    assert isinstance(settings.http_tokens, SecretStr)
    assert settings.http_tokens.get_secret_value() == "tok-0123456789abcdef=acme"
    assert load_settings(http_max_concurrency=3).http_max_concurrency == 3  # by field name


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValidationError, match="frozen"):
        settings.model = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "longest_task_s", "max_countdown_s"),
    [
        ({}, 45.0, 60.0),
        ({"api_timeout_s": 20}, 30.0, 60.0),
        ({"visibility_timeout_s": 120}, 45.0, 30.0),
        ({"backoff_max_s": 8}, 45.0, 8.0),
    ],
)
def test_task_and_countdown_bounds_follow_the_timeouts(
    overrides: dict[str, object], longest_task_s: float, max_countdown_s: float
) -> None:
    settings = load_settings(**overrides)
    assert settings.longest_task_s == longest_task_s
    assert settings.max_countdown_s == max_countdown_s


def test_the_default_visibility_timeout_outlasts_the_longest_task_plus_countdown() -> None:
    settings = Settings()
    assert settings.visibility_timeout_s > settings.longest_task_s + settings.max_countdown_s
