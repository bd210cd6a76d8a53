"""Idempotency keys for HTTP POSTs: the first response is kept 24 h and replayed for the same body.

A key is claimed (a short-lived "pending" entry) before the request runs, then completed with the
response, or released when the request did not succeed, so the client may try again. The
decisions are pure (`decide`); the storage is a small Protocol with a Redis implementation in
`shared/redis_state.py` and the in-memory twin below.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel

from shared.config import Settings

KEEP_S = 24 * 3600.0
# A claim outlives any request; a crashed server's claim frees itself after this.
PENDING_S = 120.0


class IdempotencyStore(Protocol):
    """Short-lived values by key; `claim` is atomic across processes."""

    def claim(self, key: str, value: bytes, ttl_s: float) -> bytes | None:
        """Store `value` if the key is free (None), else return what the key holds."""
        ...

    def swap(self, key: str, expected: bytes, value: bytes, ttl_s: float) -> bool:
        """Replace the value if it still is `expected`; True when replaced."""
        ...

    def release(self, key: str, expected: bytes) -> None:
        """Delete the key if it still holds `expected`."""
        ...


class Entry(BaseModel):
    """What a key holds: a pending claim, or the first response."""

    fingerprint: str
    claim_id: str = ""
    status: int | None = None  # None while pending
    headers: list[tuple[str, str]] = []
    body: str = ""


class Verdict(StrEnum):
    """What to do with a request carrying a key."""

    RUN = "run"  # the key is ours: run the request
    REPLAY = "replay"  # same body: send the stored response
    MISMATCH = "mismatch"  # another body used this key: 409
    IN_PROGRESS = "in_progress"  # the same request is running right now: 409


def fingerprint(method: str, path: str, body: bytes) -> str:
    """The request's identity: method, path and the body (JSON compared by value)."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError, RecursionError):  # not JSON (or absurdly deep)
        canonical = body
    return hashlib.sha256(f"{method} {path}\n".encode() + canonical).hexdigest()


def decide(existing: Entry, fingerprint_: str) -> Verdict:
    """The verdict for a request whose key is already taken by `existing`."""
    if existing.fingerprint != fingerprint_:
        return Verdict.MISMATCH
    return Verdict.IN_PROGRESS if existing.status is None else Verdict.REPLAY


@dataclass(frozen=True)
class Claim:
    """A key this request holds while it runs."""

    key: str
    pending: bytes


class Idempotency:
    """Claim, complete and release keys, scoped by tenant."""

    def __init__(self, store: IdempotencyStore, keep_s: float = KEEP_S) -> None:
        self.store = store
        self.keep_s = keep_s

    @staticmethod
    def _key(scope: str, key: str) -> str:
        return hashlib.sha256(f"{scope}\n{key}".encode()).hexdigest()

    def begin(self, scope: str, key: str, fp: str) -> tuple[Verdict, Entry | Claim]:
        """RUN with a Claim, or another verdict with the entry that holds the key."""
        full = self._key(scope, key)
        pending = Entry(fingerprint=fp, claim_id=uuid.uuid4().hex).model_dump_json().encode()
        held = self.store.claim(full, pending, PENDING_S)
        if held is None:
            return Verdict.RUN, Claim(full, pending)
        existing = Entry.model_validate_json(held)
        return decide(existing, fp), existing

    def complete(
        self, claim: Claim, status: int, headers: list[tuple[str, str]], body: str
    ) -> None:
        """Keep the response for `keep_s`."""
        entry = Entry.model_validate_json(claim.pending)
        done = entry.model_copy(update={"status": status, "headers": headers, "body": body})
        self.store.swap(claim.key, claim.pending, done.model_dump_json().encode(), self.keep_s)

    def release(self, claim: Claim) -> None:
        """Free the key: the request did not succeed, the client may retry it."""
        self.store.release(claim.key, claim.pending)


class MemoryIdempotencyStore:
    """The in-process twin (tests and `memory://` brokers)."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()

    def _live(self, key: str) -> bytes | None:
        found = self._values.get(key)
        if found is None or found[1] <= time.monotonic():
            self._values.pop(key, None)
            return None
        return found[0]

    def claim(self, key: str, value: bytes, ttl_s: float) -> bytes | None:
        with self._lock:
            held = self._live(key)
            if held is None:
                self._values[key] = (value, time.monotonic() + ttl_s)
            return held

    def swap(self, key: str, expected: bytes, value: bytes, ttl_s: float) -> bool:
        with self._lock:
            if self._live(key) != expected:
                return False
            self._values[key] = (value, time.monotonic() + ttl_s)
            return True

    def release(self, key: str, expected: bytes) -> None:
        with self._lock:
            if self._live(key) == expected:
                del self._values[key]


def idempotency_store_for(settings: Settings) -> IdempotencyStore:
    """Redis for a Redis broker; in-process for `memory://`."""
    if settings.broker_url.startswith("memory://"):
        return MemoryIdempotencyStore()
    from shared.redis_state import RedisIdempotencyStore  # redis-py loads only for Redis users

    return RedisIdempotencyStore(settings.broker_url, settings.sentinel_master)
