"""The call gate: a guarded moving window and an in-flight cap, in memory and in (fake) Redis."""

from __future__ import annotations

from collections.abc import Callable

import fakeredis
import pytest

from shared.errors import InvalidSpec
from worker.gate import RATE_GUARD_S, CallGate, MemoryGate, RedisGate, parse_rate

GateFactory = Callable[[str | None, int | None], CallGate]


def memory_gate(rate: str | None, max_inflight: int | None) -> CallGate:
    return MemoryGate(rate, max_inflight)


def redis_gate(rate: str | None, max_inflight: int | None) -> CallGate:
    return RedisGate(fakeredis.FakeRedis(), rate, max_inflight)


GATES = pytest.mark.parametrize("make_gate", [memory_gate, redis_gate], ids=["memory", "redis"])


@GATES
def test_window_admits_its_amount_then_says_to_wait_past_the_guard(
    make_gate: GateFactory,
) -> None:
    gate = make_gate("3 per 10 seconds", None)

    admitted = [gate.admit(f"call-{i}", 30) for i in range(3)]
    wait = gate.admit("call-3", 30)

    assert admitted == [None, None, None]
    assert wait is not None
    # The oldest admission frees its place a guard after the quota's own window.
    assert 10.0 < wait <= 10.0 + RATE_GUARD_S


@GATES
def test_in_flight_cap_frees_a_slot_on_release(make_gate: GateFactory) -> None:
    gate = make_gate(None, 1)

    assert gate.admit("a", 30) is None
    assert gate.admit("b", 30) is not None
    gate.release("a")
    assert gate.admit("b", 30) is None


@GATES
def test_a_call_refused_by_the_window_gives_its_in_flight_slot_back(
    make_gate: GateFactory,
) -> None:
    gate = make_gate("1 per 10 seconds", 1)

    assert gate.admit("a", 30) is None
    gate.release("a")
    assert gate.admit("b", 30) is not None  # the window is full
    gate.release("b")
    assert gate.admit("c", 30) is not None  # still the window, not a slot leaked to b


def test_redis_gate_shares_one_window_between_processes() -> None:
    server = fakeredis.FakeServer()
    first = RedisGate(fakeredis.FakeRedis(server=server), "2 per 5 seconds", None)
    second = RedisGate(fakeredis.FakeRedis(server=server), "2 per 5 seconds", None)

    assert first.admit("a", 30) is None
    assert second.admit("b", 30) is None
    assert first.admit("c", 30) is not None
    assert second.admit("d", 30) is not None


def test_a_rate_that_is_not_one_says_how_to_write_it() -> None:
    with pytest.raises(InvalidSpec, match="10 per 5 seconds"):
        parse_rate("ten a minute")
