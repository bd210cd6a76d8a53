"""Gate and ledger in (fake) Redis: a Redis outage is StorageUnavailable, a bug is not."""

from __future__ import annotations

import fakeredis
import pytest
import redis

from shared.errors import StorageUnavailable
from worker.budget import RedisLedger
from worker.gate import RedisGate


def down() -> fakeredis.FakeRedis:
    """A client of a Redis that refuses connections (redis-py raises its ConnectionError)."""
    server = fakeredis.FakeServer()
    server.connected = False
    return fakeredis.FakeRedis(server=server)


def test_an_unreachable_redis_is_an_outage_for_the_gate_and_the_ledger() -> None:
    gate = RedisGate(down(), "2 per 5 seconds", 1)
    ledger = RedisLedger(down(), hold_s=60)

    with pytest.raises(StorageUnavailable, match="call gate unavailable") as admitted:
        gate.admit("a", 30)
    with pytest.raises(StorageUnavailable, match="cannot release call slot"):
        gate.release("a")
    with pytest.raises(StorageUnavailable, match="budget ledger unavailable") as reserved:
        ledger.reserve("s1", "a", 0.1, 1.0, lambda: 0.0)
    with pytest.raises(StorageUnavailable, match="budget ledger unavailable"):
        ledger.settle("s1", "a", 0.1)

    assert isinstance(admitted.value.__cause__, redis.ConnectionError)
    assert isinstance(reserved.value.__cause__, redis.ConnectionError)


def test_a_bug_while_rebuilding_the_ledger_goes_up_as_itself_not_as_an_outage() -> None:
    ledger = RedisLedger(fakeredis.FakeRedis(), hold_s=60)

    def broken_spent() -> float:
        raise TypeError("unsupported operand type(s) for +: 'float' and 'NoneType'")

    with pytest.raises(TypeError, match="unsupported operand"):
        ledger.reserve("s1", "a", 0.1, 1.0, broken_spent)


def test_a_bug_in_the_gate_goes_up_as_itself_not_as_an_outage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = fakeredis.FakeRedis()
    gate = RedisGate(client, None, 1)
    assert gate.admit("a", 30) is None

    def broken_zrem(*args: object) -> int:
        raise TypeError("zrem() got an unexpected keyword argument")

    monkeypatch.setattr(client, "zrem", broken_zrem)
    with pytest.raises(TypeError, match="unexpected keyword"):
        gate.release("a")


def test_the_ledger_rebuilds_spend_from_the_store_then_holds_and_settles() -> None:
    ledger = RedisLedger(fakeredis.FakeRedis(), hold_s=60)

    assert ledger.reserve("s1", "a", 0.4, 1.0, lambda: 0.5)  # 0.5 spent + 0.4 held <= 1.0
    assert not ledger.reserve("s1", "b", 0.4, 1.0, lambda: 0.5)  # 0.5 + 0.4 + 0.4 > 1.0
    ledger.settle("s1", "a", 0.3)

    assert ledger.spent("s1") == pytest.approx(0.8)
