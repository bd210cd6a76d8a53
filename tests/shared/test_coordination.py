"""Leases and the live turn index: MemoryCoordinator and RedisCoordinator (on fakeredis) agree."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import fakeredis
import pytest
import redis

from shared.coordination import Coordinator, LiveTurn, MemoryCoordinator
from shared.errors import StorageUnavailable, TransientError
from shared.keys import REDIS_PREFIX
from shared.models import TurnState
from shared.redis_state import RedisCoordinator
from shared.turn_records import ErrorInfo

QUOTA = ErrorInfo(kind="rate_limited", status=429, message="quota exhausted")


def redis_coordinator(
    monkeypatch: pytest.MonkeyPatch, server: fakeredis.FakeServer
) -> RedisCoordinator:
    seen: dict[str, Any] = {}

    def from_url(url: str, **kwargs: Any) -> fakeredis.FakeRedis:
        seen.update(url=url, **kwargs)
        return fakeredis.FakeRedis(server=server)

    monkeypatch.setattr(redis.Redis, "from_url", from_url)
    coord = RedisCoordinator("redis://example:6379/0")
    assert seen["url"] == "redis://example:6379/0"
    assert seen["socket_timeout"] == 10
    return coord


@pytest.fixture
def server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


@pytest.fixture(params=["memory", "redis"])
def coord(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, server: fakeredis.FakeServer
) -> Iterator[Coordinator]:
    if request.param == "memory":
        yield MemoryCoordinator()
    else:
        yield redis_coordinator(monkeypatch, server)


@pytest.fixture
def rcoord(monkeypatch: pytest.MonkeyPatch, server: fakeredis.FakeServer) -> RedisCoordinator:
    return redis_coordinator(monkeypatch, server)


# --- the contract both implementations keep ----------------------------------------------------


def test_a_free_lease_is_taken(coord: Coordinator) -> None:
    assert coord.acquire_lease("s1:0001", "worker-a", 30) is True


def test_a_held_lease_refuses_another_owner(coord: Coordinator) -> None:
    assert coord.acquire_lease("s1:0001", "worker-a", 30)
    assert coord.acquire_lease("s1:0001", "worker-b", 30) is False


def test_a_lease_is_reentrant_for_its_owner(coord: Coordinator) -> None:
    assert coord.acquire_lease("s1:0001", "worker-a", 30)
    assert coord.acquire_lease("s1:0001", "worker-a", 30) is True


def test_leases_on_different_keys_are_independent(coord: Coordinator) -> None:
    assert coord.acquire_lease("s1:0001", "worker-a", 30)
    assert coord.acquire_lease("s1:0002", "worker-b", 30) is True


def test_releasing_a_lease_lets_another_owner_take_it(coord: Coordinator) -> None:
    coord.acquire_lease("s1:0001", "worker-a", 30)
    coord.release_lease("s1:0001", "worker-a")
    assert coord.acquire_lease("s1:0001", "worker-b", 30) is True


def test_only_the_holder_can_release_a_lease(coord: Coordinator) -> None:
    coord.acquire_lease("s1:0001", "worker-a", 30)
    coord.release_lease("s1:0001", "worker-b")
    assert coord.acquire_lease("s1:0001", "worker-c", 30) is False
    assert coord.acquire_lease("s1:0001", "worker-a", 30) is True


def test_releasing_a_free_lease_is_a_no_op(coord: Coordinator) -> None:
    coord.release_lease("never-taken", "worker-a")
    assert coord.acquire_lease("never-taken", "worker-b", 30) is True


def test_an_expired_lease_can_be_taken_by_another_owner(coord: Coordinator) -> None:
    assert coord.acquire_lease("s1:0001", "worker-a", 0.05)
    time.sleep(0.12)
    assert coord.acquire_lease("s1:0001", "worker-b", 30) is True
    assert coord.acquire_lease("s1:0001", "worker-a", 30) is False


def test_retaking_a_lease_extends_its_ttl(coord: Coordinator) -> None:
    assert coord.acquire_lease("s1:0001", "worker-a", 0.05)
    assert coord.acquire_lease("s1:0001", "worker-a", 30)
    time.sleep(0.12)
    assert coord.acquire_lease("s1:0001", "worker-b", 30) is False


def test_set_live_then_live_returns_the_same_turns(coord: Coordinator) -> None:
    running = LiveTurn(state=TurnState.RUNNING, attempts=2, error=QUOTA, updated_at=1700000000.5)
    parked = LiveTurn(state=TurnState.WAITING, reason="daily quota", due_at=1700086400.0)
    coord.set_live("s1", 2, running)
    coord.set_live("s1", 10, parked)
    assert coord.live("s1") == {2: running, 10: parked}


def test_set_live_replaces_a_turns_previous_state(coord: Coordinator) -> None:
    coord.set_live("s1", 1, LiveTurn(state=TurnState.QUEUED))
    coord.set_live("s1", 1, LiveTurn(state=TurnState.RUNNING, attempts=1))
    assert coord.live("s1") == {1: LiveTurn(state=TurnState.RUNNING, attempts=1)}


def test_clear_live_forgets_only_that_turn(coord: Coordinator) -> None:
    coord.set_live("s1", 1, LiveTurn(state=TurnState.RUNNING))
    coord.set_live("s1", 2, LiveTurn(state=TurnState.WAITING))
    coord.clear_live("s1", 1)
    coord.clear_live("s1", 7)  # not live: no error
    coord.clear_live("other", 1)
    assert coord.live("s1") == {2: LiveTurn(state=TurnState.WAITING)}


def test_live_turns_are_kept_per_session(coord: Coordinator) -> None:
    coord.set_live("s1", 1, LiveTurn(state=TurnState.RUNNING))
    coord.set_live("s2", 1, LiveTurn(state=TurnState.QUEUED))
    assert coord.live("s1") == {1: LiveTurn(state=TurnState.RUNNING)}
    assert coord.live("s2") == {1: LiveTurn(state=TurnState.QUEUED)}
    assert coord.live("s3") == {}


def test_the_live_mapping_returned_is_a_copy(coord: Coordinator) -> None:
    coord.set_live("s1", 1, LiveTurn(state=TurnState.RUNNING))
    coord.live("s1").clear()
    assert list(coord.live("s1")) == [1]


def test_tracked_sessions_are_sorted_and_deduplicated(coord: Coordinator) -> None:
    for sid in ["s2", "s10", "a", "s2"]:
        coord.track_session(sid)
    assert coord.tracked_sessions() == ["a", "s10", "s2"]


def test_no_sessions_are_tracked_at_first(coord: Coordinator) -> None:
    assert coord.tracked_sessions() == []


# --- MemoryCoordinator with a controlled clock -------------------------------------------------


def test_memory_lease_expires_exactly_at_its_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = SimpleNamespace(now=100.0)
    monkeypatch.setattr("shared.coordination.time", SimpleNamespace(monotonic=lambda: clock.now))
    coord = MemoryCoordinator()
    assert coord.acquire_lease("k", "a", 45)
    clock.now = 144.999
    assert coord.acquire_lease("k", "b", 45) is False
    clock.now = 145.0
    assert coord.acquire_lease("k", "b", 45) is True


# --- RedisCoordinator specifics ----------------------------------------------------------------


def test_redis_keys_all_start_with_the_prefix(rcoord: RedisCoordinator) -> None:
    rcoord.acquire_lease("s1:0001", "worker-a", 30)
    rcoord.set_live("s1", 1, LiveTurn(state=TurnState.RUNNING))
    rcoord.track_session("s1")
    assert REDIS_PREFIX == "eq:"
    assert sorted(rcoord.client.keys("*")) == [b"eq:lease:s1:0001", b"eq:live:s1", b"eq:sessions"]


def test_a_redis_lease_holds_the_owner_with_a_millisecond_ttl(rcoord: RedisCoordinator) -> None:
    rcoord.acquire_lease("s1:0001", "worker-a", 45.5)
    assert rcoord.client.get("eq:lease:s1:0001") == b"worker-a"
    assert 45_000 < rcoord.client.pttl("eq:lease:s1:0001") <= 45_500


def test_a_released_redis_lease_deletes_its_key(rcoord: RedisCoordinator) -> None:
    rcoord.acquire_lease("s1:0001", "worker-a", 30)
    rcoord.release_lease("s1:0001", "worker-a")
    assert rcoord.client.exists("eq:lease:s1:0001") == 0


def test_redis_live_entries_are_json_fields_keyed_by_turn_index(rcoord: RedisCoordinator) -> None:
    rcoord.set_live("s1", 3, LiveTurn(state=TurnState.RUNNING, attempts=1))
    raw = rcoord.client.hgetall("eq:live:s1")
    assert list(raw) == [b"3"]
    assert json.loads(raw[b"3"])["state"] == "running"


def test_two_redis_coordinators_on_one_server_share_leases(
    monkeypatch: pytest.MonkeyPatch, server: fakeredis.FakeServer
) -> None:
    first = redis_coordinator(monkeypatch, server)
    second = redis_coordinator(monkeypatch, server)
    assert first.acquire_lease("s1:0001", "worker-a", 30)
    assert second.acquire_lease("s1:0001", "worker-b", 30) is False
    first.set_live("s1", 1, LiveTurn(state=TurnState.RUNNING))
    assert second.live("s1") == {1: LiveTurn(state=TurnState.RUNNING)}


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.acquire_lease("k", "a", 30),
        lambda c: c.release_lease("k", "a"),
        lambda c: c.set_live("s1", 1, LiveTurn(state=TurnState.RUNNING)),
        lambda c: c.clear_live("s1", 1),
        lambda c: c.live("s1"),
        lambda c: c.track_session("s1"),
        lambda c: c.tracked_sessions(),
    ],
    ids=["acquire", "release", "set_live", "clear_live", "live", "track", "tracked"],
)
def test_a_redis_outage_raises_storage_unavailable(
    rcoord: RedisCoordinator, server: fakeredis.FakeServer, call: Any
) -> None:
    server.connected = False
    with pytest.raises(StorageUnavailable, match="redis"):
        call(rcoord)


def test_storage_unavailable_from_redis_is_transient(
    rcoord: RedisCoordinator, server: fakeredis.FakeServer
) -> None:
    server.connected = False
    with pytest.raises(StorageUnavailable) as caught:
        rcoord.acquire_lease("s1:0001", "a", 30)
    assert isinstance(caught.value, TransientError)
    assert isinstance(caught.value.__cause__, redis.RedisError)


def test_a_heartbeat_shows_on_the_running_entry_and_lapses_when_it_stops(
    coord: Coordinator,
) -> None:
    coord.set_live("s1", 1, LiveTurn(state=TurnState.RUNNING, attempts=1))
    coord.set_live("s1", 2, LiveTurn(state=TurnState.QUEUED))
    coord.beat("s1", 1, 1000.0)
    coord.beat("s2", 3, 2000.0)

    assert coord.live("s1")[1].lease_until == 1000.0
    assert coord.live("s1")[2].lease_until is None
    assert coord.lapsed(1500.0, 10) == [("s1", 1)]
    assert coord.lapsed(2500.0, 10) == [("s1", 1), ("s2", 3)]

    coord.drop_running("s1", 1)

    assert coord.lapsed(2500.0, 10) == [("s2", 3)]
    assert coord.live("s1")[1].lease_until is None
