"""Webhooks, the pure part: Standard Webhooks signatures, the payload, keys and retry timing.

A delivery is `POST webhook_url` with the headers `webhook-id` (the event's stable id),
`webhook-timestamp` (seconds, fresh per attempt) and `webhook-signature: v1,<base64 HMAC-SHA256
of "{id}.{timestamp}.{body}">`, keyed with the bytes of `EDITQUEUE_WEBHOOK_SECRET=whsec_<base64>`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import random
import re

from shared.config import Settings
from shared.errors import InvalidSpec
from shared.events import Event
from shared.keys import SESSIONS
from shared.models import public_session_id

TASK_DELIVER_WEBHOOK = "editqueue.deliver_webhook"
QUEUE_WEBHOOKS = "editqueue.webhooks"
SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
# Waits after each failed attempt (~7.7 h in all, then give up); the broker only ever sees
# countdowns up to `settings.max_countdown_s`, so longer waits are chained in short hops.
RETRY_DELAYS_S = (5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0)
JITTER = 0.1
DELIVERY_TIMEOUT_S = 10.0
MAX_SECRET_BYTES = 64
# `evt_{sid}_{turn}_{revision}_{kind}`; a sid stored as `tenant.id` holds the one dot allowed.
EVENT_ID_RE = re.compile(
    r"evt_(?:[A-Za-z0-9_-]{1,200}|[A-Za-z0-9_-]{1,64}\.[A-Za-z0-9_-]{1,64}_\d+_\d+_[a-z_]{1,40})"
)


def parse_secret(value: str) -> bytes:
    """The signing key from `whsec_<base64>`; InvalidSpec when it is not that shape."""
    if not value.startswith(SECRET_PREFIX):
        raise InvalidSpec("EDITQUEUE_WEBHOOK_SECRET must look like whsec_<base64 key>")
    try:
        key = base64.b64decode(value[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSpec("EDITQUEUE_WEBHOOK_SECRET: the part after whsec_ is not base64") from None
    if not 16 <= len(key) <= MAX_SECRET_BYTES:
        raise InvalidSpec("EDITQUEUE_WEBHOOK_SECRET: the key must be 16 to 64 bytes")
    return key


def signing_key(settings: Settings) -> bytes | None:
    """The key of `EDITQUEUE_WEBHOOK_SECRET`; None when unset or empty (webhooks are off)."""
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    return parse_secret(secret) if secret else None


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: `v1,<base64 HMAC-SHA256 of id.timestamp.body>`."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def signed_headers(key: bytes, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Every header one delivery attempt sends."""
    return {
        "content-type": "application/json",
        "user-agent": "editqueue-webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, msg_id, timestamp, body),
    }


def verify(key: bytes, headers: dict[str, str], body: bytes, now: int, tolerance_s: int) -> bool:
    """True when one of the `v1` signatures matches and the timestamp is recent (for receivers)."""
    try:
        timestamp = int(headers["webhook-timestamp"])
        expected = sign(key, headers["webhook-id"], timestamp, body)
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    offered = headers.get("webhook-signature", "").split()
    return any(hmac.compare_digest(expected, candidate) for candidate in offered)


def payload(event: Event) -> bytes:
    """The JSON body: `{type, timestamp, data}`, the same bytes on every attempt."""
    # The receiver knows the session by the id its tenant chose, not by `tenant.id`.
    sid = public_session_id(event.session_id)
    data = {"event_id": event.event_id, "session_id": sid, "turn": event.turn}
    document = {
        "type": event.kind.value,
        "timestamp": event.created_at.isoformat().replace("+00:00", "Z"),
        "data": {**data, **event.data},
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def event_key(sid: str, event_id: str) -> str:
    """Where an event waiting for delivery is stored (written once; dedupes re-emissions)."""
    return f"{SESSIONS}{sid}/events/{event_id}.json"


def delivery_key(sid: str, event_id: str) -> str:
    """Where the final outcome of an event's delivery is recorded (delivered or gave up)."""
    return f"{SESSIONS}{sid}/events/{event_id}.delivery.json"


def valid_event_id(value: str) -> str:
    """Refuse event ids that are not of the shape `make_event` produces."""
    if not EVENT_ID_RE.fullmatch(value):
        raise ValueError(f"event id {value!r} is not an editqueue event id")
    return value


def retry_delay_s(failed_attempts: int, rng: random.Random) -> float | None:
    """How long to wait after `failed_attempts` failures (None: give up), with ±10% jitter."""
    if failed_attempts > len(RETRY_DELAYS_S):
        return None
    base = RETRY_DELAYS_S[failed_attempts - 1]
    return base * (1 + rng.uniform(-JITTER, JITTER))


def hop_s(now: float, due_at: float, max_countdown_s: float) -> float:
    """The next countdown toward `due_at`, never longer than the broker allows."""
    return max(0.0, min(due_at - now, max_countdown_s))
