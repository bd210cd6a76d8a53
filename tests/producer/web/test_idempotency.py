"""Idempotency keys: the same body replays, another body conflicts; Redis and memory agree."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import redis

from producer.web.idempotency import (
    Claim,
    Entry,
    Idempotency,
    IdempotencyStore,
    MemoryIdempotencyStore,
    Verdict,
    decide,
    fingerprint,
    idempotency_store_for,
)
from shared.config import load_settings
from shared.redis_state import RedisIdempotencyStore


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryIdempotencyStore()
        return
    server = fakeredis.FakeServer()
    monkeypatch.setattr(
        redis.Redis, "from_url", lambda url, **kw: fakeredis.FakeRedis(server=server)
    )
    yield RedisIdempotencyStore("redis://example:6379/0")


def test_json_bodies_are_compared_by_value_and_paths_count() -> None:
    a = fingerprint("POST", "/v1/sessions", b'{"a": 1, "b": [1, 2]}')
    b = fingerprint("POST", "/v1/sessions", b'{"b":[1,2],"a":1}')

    assert a == b
    assert a != fingerprint("POST", "/v1/sessions", b'{"a": 2, "b": [1, 2]}')
    assert a != fingerprint("POST", "/v1/sessions/x/turns", b'{"a": 1, "b": [1, 2]}')
    assert fingerprint("POST", "/p", b"\xff not json") != fingerprint("POST", "/p", b"other")


@pytest.mark.parametrize(
    ("status", "fp", "verdict"),
    [(None, "f", Verdict.IN_PROGRESS), (201, "f", Verdict.REPLAY), (201, "g", Verdict.MISMATCH)],
)
def test_decide(status: int | None, fp: str, verdict: Verdict) -> None:
    assert decide(Entry(fingerprint="f", status=status), fp) is verdict


def test_first_request_runs_then_the_same_body_replays_its_response(
    store: IdempotencyStore,
) -> None:
    keys = Idempotency(store)
    verdict, claim = keys.begin("acme", "k1", "fp")
    assert verdict is Verdict.RUN and isinstance(claim, Claim)

    assert keys.begin("acme", "k1", "fp")[0] is Verdict.IN_PROGRESS
    keys.complete(claim, 201, [("content-type", "application/json")], '{"id":"s"}')
    verdict, entry = keys.begin("acme", "k1", "fp")

    assert verdict is Verdict.REPLAY
    assert isinstance(entry, Entry)
    assert (entry.status, entry.body) == (201, '{"id":"s"}')
    assert entry.headers == [("content-type", "application/json")]
    assert keys.begin("acme", "k1", "other body")[0] is Verdict.MISMATCH


def test_keys_are_scoped_by_tenant(store: IdempotencyStore) -> None:
    keys = Idempotency(store)
    keys.begin("acme", "k1", "fp")

    assert keys.begin("globex", "k1", "fp")[0] is Verdict.RUN


def test_a_released_key_can_be_used_again(store: IdempotencyStore) -> None:
    keys = Idempotency(store)
    _, claim = keys.begin("acme", "k1", "fp")
    assert isinstance(claim, Claim)

    keys.release(claim)

    assert keys.begin("acme", "k1", "another")[0] is Verdict.RUN


def test_a_stale_claim_cannot_complete_or_release_a_newer_one(store: IdempotencyStore) -> None:
    assert store.claim("k", b"first", 60) is None
    store.release("k", b"first")
    assert store.claim("k", b"second", 60) is None

    assert not store.swap("k", b"first", b"done", 60)
    store.release("k", b"first")

    assert store.claim("k", b"third", 60) == b"second"


def test_keys_expire(store: IdempotencyStore) -> None:
    assert store.claim("k", b"v", 0.001) is None
    import time

    time.sleep(0.01)

    assert store.claim("k", b"w", 60) is None


def test_memory_broker_gets_the_memory_store() -> None:
    settings = load_settings(broker_url="memory://", store_url="memory://")
    assert isinstance(idempotency_store_for(settings), MemoryIdempotencyStore)
