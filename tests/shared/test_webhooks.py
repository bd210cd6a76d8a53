"""Standard Webhooks signatures, the payload, and the retry timing (pure functions)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
from datetime import UTC, datetime

import pytest

from shared.config import load_settings
from shared.errors import InvalidSpec
from shared.events import EventKind, make_event
from shared.keys import delivery_key, event_key
from shared.webhooks import (
    RETRY_DELAYS_S,
    hop_s,
    parse_secret,
    payload,
    retry_delay_s,
    sign,
    signed_headers,
    signing_key,
    valid_event_id,
    verify,
)

KEY = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(KEY).decode()
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_the_secret_is_the_base64_after_whsec() -> None:
    assert parse_secret(SECRET) == KEY


@pytest.mark.parametrize(
    "value",
    ["", "sk_abc", "whsec_", "whsec_!!notbase64!!", "whsec_" + base64.b64encode(b"x").decode()],
)
def test_a_malformed_secret_is_refused_without_echoing_it(value: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_secret(value)
    assert "EDITQUEUE_WEBHOOK_SECRET" in str(caught.value)
    if len(value) > 8:
        assert value not in str(caught.value)


def test_signature_is_hmac_sha256_of_id_timestamp_body_in_base64() -> None:
    body = b'{"type":"turn.succeeded"}'
    expected = hmac.new(KEY, b"evt_1.1700000000." + body, hashlib.sha256).digest()

    assert sign(KEY, "evt_1", 1700000000, body) == "v1," + base64.b64encode(expected).decode()


def test_signed_headers_verify_and_a_changed_body_or_old_timestamp_does_not() -> None:
    body = b'{"a":1}'
    headers = signed_headers(KEY, "evt_x", 1000, body)

    assert headers["webhook-id"] == "evt_x"
    assert headers["webhook-timestamp"] == "1000"
    assert verify(KEY, headers, body, now=1010, tolerance_s=300)
    assert not verify(KEY, headers, b'{"a":2}', now=1010, tolerance_s=300)
    assert not verify(KEY, headers, body, now=2000, tolerance_s=300)
    assert not verify(b"another key" * 2, headers, body, now=1010, tolerance_s=300)
    assert not verify(KEY, {**headers, "webhook-id": "evt_y"}, body, now=1010, tolerance_s=300)


def test_any_of_several_space_separated_signatures_may_match() -> None:
    body = b"{}"
    headers = signed_headers(KEY, "evt_x", 1000, body)
    headers["webhook-signature"] = "v1,bm9wZQ== " + headers["webhook-signature"]

    assert verify(KEY, headers, body, now=1000, tolerance_s=5)


def test_payload_has_type_timestamp_and_data_and_is_stable() -> None:
    event = make_event(EventKind.TURN_SUCCEEDED, "s1", NOW, turn=2, data={"cost_usd": 0.1})

    first, again = payload(event), payload(event)
    document = json.loads(first)

    assert first == again
    assert document == {
        "type": "turn.succeeded",
        "timestamp": "2026-11-27T12:00:00Z",
        "data": {"event_id": event.event_id, "session_id": "s1", "turn": 2, "cost_usd": 0.1},
    }


def test_event_objects_live_under_the_session() -> None:
    assert event_key("s1", "evt_a") == "sessions/s1/events/evt_a.json"
    assert delivery_key("s1", "evt_a") == "sessions/s1/events/evt_a.delivery.json"


@pytest.mark.parametrize("value", ["evt_s1_2_1_turn_succeeded", "evt_A-b"])
def test_event_ids_of_make_event_are_valid(value: str) -> None:
    assert valid_event_id(value) == value


@pytest.mark.parametrize("value", ["", "evt_", "../x", "evt_a/b", "evt_a.json", "x_evt"])
def test_other_event_ids_are_refused(value: str) -> None:
    with pytest.raises(ValueError):
        valid_event_id(value)


def test_retries_back_off_for_hours_then_give_up() -> None:
    rng = random.Random(1)
    delays = [retry_delay_s(n, rng) for n in range(1, len(RETRY_DELAYS_S) + 2)]

    assert delays[-1] is None
    waits = [d for d in delays if d is not None]
    assert waits == sorted(waits)
    assert sum(waits) > 6 * 3600
    for wait, base in zip(waits, RETRY_DELAYS_S, strict=True):
        assert base * 0.9 <= wait <= base * 1.1


@pytest.mark.parametrize(
    ("now", "due", "cap", "expected"),
    [(0.0, 5.0, 60.0, 5.0), (0.0, 3600.0, 60.0, 60.0), (10.0, 5.0, 60.0, 0.0)],
)
def test_a_hop_never_exceeds_the_broker_countdown(
    now: float, due: float, cap: float, expected: float
) -> None:
    assert hop_s(now, due, cap) == expected


@pytest.mark.parametrize(("value", "expected"), [(None, None), ("", None), (SECRET, KEY)])
def test_an_unset_or_empty_secret_turns_webhooks_off(
    value: str | None, expected: bytes | None
) -> None:
    settings = load_settings(store_url="memory://", broker_url="memory://", webhook_secret=value)

    assert signing_key(settings) == expected


def test_an_event_of_a_tenant_scoped_session_has_a_valid_id_and_the_public_session_id() -> None:
    event = make_event(EventKind.TURN_SUCCEEDED, "acme.alpha-room", NOW, turn=1)

    assert valid_event_id(event.event_id) == event.event_id
    assert json.loads(payload(event))["data"]["session_id"] == "alpha-room"
