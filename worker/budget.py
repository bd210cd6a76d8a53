"""Spend limits: a turn reserves its price before the call and settles what was billed after.

A scope is a session (`session:<id>`) or a batch (`batch:<id>`). Spend is rebuilt from the
committed results in the store when the ledger has none (a new or wiped Redis). Reservations
expire with the call's lease, so a killed worker's reservation does not leak.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol, cast

from shared.keys import budget_keys
from shared.redis_state import RedisClient, redis_outage

EPSILON_USD = 1e-9


class BudgetLedger(Protocol):
    """Reserve-then-settle accounting shared by every worker."""

    def reserve(
        self, scope: str, owner: str, amount: float, limit: float, spent: Callable[[], float]
    ) -> bool:
        """Hold `amount` for `owner` unless it would pass `limit`; `spent` rebuilds lost state."""
        ...

    def settle(self, scope: str, owner: str, actual: float) -> None:
        """Drop `owner`'s reservation and add what was really billed (0 when not billed)."""
        ...

    def spent(self, scope: str) -> float:
        """Spend recorded so far (0 when unknown)."""
        ...


class MemoryLedger:
    """One process's ledger (the embedded run, unit tests)."""

    def __init__(self) -> None:
        self._spent: dict[str, float] = {}
        self._held: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()

    def reserve(
        self, scope: str, owner: str, amount: float, limit: float, spent: Callable[[], float]
    ) -> bool:
        with self._lock:
            if scope not in self._spent:
                self._spent[scope] = spent()
            held = self._held.setdefault(scope, {})
            if self._spent[scope] + sum(held.values()) + amount > limit + EPSILON_USD:
                return False
            held[owner] = amount
            return True

    def settle(self, scope: str, owner: str, actual: float) -> None:
        with self._lock:
            self._held.get(scope, {}).pop(owner, None)
            self._spent[scope] = self._spent.get(scope, 0.0) + actual

    def spent(self, scope: str) -> float:
        return self._spent.get(scope, 0.0)


_RESERVE = """
if redis.call('exists', KEYS[1]) == 0 then return -1 end
redis.call('zremrangebyscore', KEYS[2], '-inf', ARGV[1])
local held = 0
for _, member in ipairs(redis.call('zrange', KEYS[2], 0, -1)) do
  if string.sub(member, 1, string.len(ARGV[5]) + 1) ~= ARGV[5] .. '|' then
    held = held + tonumber(string.match(member, '|([^|]+)$'))
  end
end
local spent = tonumber(redis.call('hget', KEYS[1], 'spent'))
if spent + held + tonumber(ARGV[3]) > tonumber(ARGV[4]) + 1e-9 then return 0 end
redis.call('zadd', KEYS[2], ARGV[2], ARGV[5] .. '|' .. ARGV[3])
return 1
"""
_SETTLE = """
for _, member in ipairs(redis.call('zrange', KEYS[2], 0, -1)) do
  if string.sub(member, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. '|' then
    redis.call('zrem', KEYS[2], member)
  end
end
redis.call('hincrbyfloat', KEYS[1], 'spent', ARGV[2])
return 1
"""


class RedisLedger:
    """The fleet's ledger in Redis (`eq:budget:<scope>` and its reservations)."""

    def __init__(self, client: RedisClient, hold_s: float) -> None:
        self._client = client
        self._hold_s = hold_s
        self._reserve = client.register_script(_RESERVE)
        self._settle = client.register_script(_SETTLE)

    def reserve(
        self, scope: str, owner: str, amount: float, limit: float, spent: Callable[[], float]
    ) -> bool:
        now = time.time()
        args: list[float | str] = [now, now + self._hold_s, amount, limit, owner]
        with redis_outage("budget ledger unavailable"):
            result = self._reserve(keys=budget_keys(scope), args=args)
            if result == -1:  # no ledger yet (new or wiped Redis): rebuild spend from the store
                self._client.hsetnx(budget_keys(scope)[0], "spent", str(spent()))
                result = self._reserve(keys=budget_keys(scope), args=args)
        return bool(result == 1)

    def settle(self, scope: str, owner: str, actual: float) -> None:
        with redis_outage("budget ledger unavailable"):
            self._settle(keys=budget_keys(scope), args=[owner, actual])

    def spent(self, scope: str) -> float:
        value = cast(bytes | None, self._client.hget(budget_keys(scope)[0], "spent"))
        return float(value) if value is not None else 0.0
