"""Log formats and the OTEL_* switch."""

from __future__ import annotations

import json
import logging
from datetime import datetime

import pytest

from shared.config import Settings
from shared.tracing import log_formatter


def record(**extra: object) -> logging.LogRecord:
    rec = logging.LogRecord(
        "editqueue.turn", logging.WARNING, __file__, 1, "turn s1/2 %s", ("x",), None
    )
    rec.__dict__.update(extra)
    return rec


def test_json_format_is_one_object_with_an_iso_timestamp_and_the_extra_fields() -> None:
    line = log_formatter("json").format(record(session_id="s1", turn=2, park_until=None))

    data = json.loads(line)

    assert data["message"] == "turn s1/2 x" and data["levelname"] == "WARNING"
    assert data["session_id"] == "s1" and data["turn"] == 2 and data["park_until"] is None
    assert datetime.fromisoformat(data["timestamp"]).utcoffset() is not None
    assert "\n" not in line


def test_text_format_is_the_plain_line() -> None:
    assert log_formatter("text").format(record()).endswith("WARNING editqueue.turn turn s1/2 x")


@pytest.mark.parametrize(
    ("env", "exporter"),
    [
        ({}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "console"}, "console"),
        (
            {
                "OTEL_TRACES_EXPORTER": "none",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
            },
            None,
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"},
            None,
        ),
    ],
)
def test_tracing_is_on_only_when_the_standard_variables_ask(
    env: dict[str, str], exporter: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings().otel_exporter == exporter


def test_an_unknown_log_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log_format"):
        Settings(log_format="xml")  # type: ignore[arg-type]
