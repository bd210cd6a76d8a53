"""A refusal's recommended commands, said as the HTTP API's requests."""

from __future__ import annotations

import pytest

from producer.web.advice import for_http


@pytest.mark.parametrize(
    ("cli", "http"),
    [
        ("`editqueue status s1`", "`GET /v1/sessions/s1`"),
        ("`editqueue status`", "`GET /v1/sessions`"),
        ("`editqueue cancel s1`", "`POST /v1/sessions/s1/cancel`"),
        ("`editqueue retry s1`", "`POST /v1/sessions/s1/retry`"),
        (
            "`editqueue append NEW_SID PROMPT`",
            '`POST /v1/sessions/NEW_SID/turns {"prompt": "PROMPT"}`',
        ),
        (
            "`editqueue fork s1 --at 6 --history first+last:4`",
            '`POST /v1/sessions/s1/fork {"at": 6, "history": "first+last:4"}`',
        ),
        (
            "`editqueue fork s1 --at 2 --budget-usd 0.26`",
            '`POST /v1/sessions/s1/fork {"at": 2, "budget_usd": 0.26}`',
        ),
        ("`editqueue budget b1 --usd 0.26`", "`editqueue budget b1 --usd 0.26`"),  # operator's
    ],
)
def test_each_recommended_command_becomes_its_request(cli: str, http: str) -> None:
    assert for_http(f"do this: {cli}, then wait", None) == f"do this: {http}, then wait"


def test_a_tenants_stored_id_is_said_as_the_id_in_its_path() -> None:
    message = "session acme.room-1 is completed; `editqueue append acme.room-1 PROMPT` adds a turn"
    assert for_http(message, "room-1") == (
        'session room-1 is completed; `POST /v1/sessions/room-1/turns {"prompt": "PROMPT"}` '
        "adds a turn"
    )
