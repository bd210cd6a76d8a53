"""Log configuration for every editqueue process: plain text, or one JSON object per line.

`EDITQUEUE_LOG_FORMAT=json` makes each record a JSON object with an ISO-8601 UTC `timestamp`,
`levelname`, `name`, `message` and the record's extra fields (the per-attempt turn line carries
session_id, turn, attempt, outcome, latency_s, tokens, cost_usd, reason ...).
"""

from __future__ import annotations

import logging

from pythonjsonlogger.json import JsonFormatter

from shared.config import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
JSON_FIELDS = "%(levelname)s %(name)s %(message)s"


def formatter(log_format: str) -> logging.Formatter:
    """The formatter for `text` or `json`."""
    if log_format == "json":
        return JsonFormatter(JSON_FIELDS, timestamp=True)
    return logging.Formatter(TEXT_FORMAT)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """editqueue's root handler (so configuring again replaces it, and nothing else)."""


def configure(settings: Settings, level: int = logging.INFO) -> None:
    """editqueue's handler on the root logger, in the configured format."""
    handler = _Handler()
    handler.setFormatter(formatter(settings.log_format))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
