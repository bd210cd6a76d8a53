"""The fleet-wide gate before every API call: a rate limit (the `limits` library's notation, a
moving window) and a cap on calls in flight (a lease-based semaphore that survives a killed holder).

Both live in Redis for a fleet, or in memory for one process. A refused caller is told how long
to wait; it re-enqueues itself with that countdown instead of sleeping in a worker slot.

The API counts a call when it arrives, 1-45 ms after admission on a busy 2-core host (measured by
tests/integration/test_limits.py), so the window is kept RATE_GUARD_S longer than the quota's:
otherwise a call admitted early in one window but arriving late, and one admitted right after the
window moved on but arriving fast, both land in the API's window. `limits` keeps whole-second
windows, so the guarded window is a small script of our own (Redis) or a deque (memory).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Protocol

from limits import RateLimitItem, parse

from shared.errors import InvalidSpec
from shared.keys import INFLIGHT_KEY, rate_key
from shared.redis_state import RedisClient, redis_outage

IDENTITY = "gemini-calls"
MIN_WAIT_S = 0.2
RATE_GUARD_S = 0.25


class CallGate(Protocol):
    """Admits an API call, or says how many seconds to wait before asking again."""

    def admit(self, owner: str, ttl_s: float) -> float | None:
        """None when the call may go now (and holds an in-flight slot until released)."""
        ...

    def release(self, owner: str) -> None:
        """Give the in-flight slot back."""
        ...


def parse_rate(text: str) -> RateLimitItem:
    """`60/minute`, `10 per 5 seconds`, `1000/day` (the limits library's notation)."""
    try:
        return parse(text)
    except ValueError as exc:
        raise InvalidSpec(
            f"EDITQUEUE_RATE_LIMIT={text!r} is not a rate; write e.g. '60/minute' or "
            "'10 per 5 seconds'"
        ) from exc


def guarded_span_s(item: RateLimitItem) -> float:
    """How long an admission counts against the quota: the quota's window plus the guard."""
    return item.get_expiry() + RATE_GUARD_S


class _MemoryWindow:
    """A moving window in one process (the caller holds a lock)."""

    def __init__(self, item: RateLimitItem) -> None:
        self._amount = item.amount
        self._span_s = guarded_span_s(item)
        self._admitted: deque[float] = deque()

    def take(self) -> float | None:
        now = time.monotonic()
        while self._admitted and self._admitted[0] <= now - self._span_s:
            self._admitted.popleft()
        if len(self._admitted) >= self._amount:
            return max(MIN_WAIT_S, self._admitted[0] + self._span_s - now)
        self._admitted.append(now)
        return None


class OpenGate:
    """No limits configured."""

    def admit(self, owner: str, ttl_s: float) -> float | None:
        return None

    def release(self, owner: str) -> None:
        return None


class MemoryGate:
    """One process's gate (the embedded run, unit tests)."""

    def __init__(self, rate: str | None, max_inflight: int | None) -> None:
        self._rate = _MemoryWindow(parse_rate(rate)) if rate else None
        self._max = max_inflight
        self._holders: dict[str, float] = {}
        self._lock = threading.Lock()

    def admit(self, owner: str, ttl_s: float) -> float | None:
        with self._lock:
            now = time.monotonic()
            self._holders = {k: v for k, v in self._holders.items() if v > now}
            if self._max is not None and len(self._holders) >= self._max:
                return MIN_WAIT_S * 5
            wait = self._rate.take() if self._rate else None
            if wait is None:
                self._holders[owner] = now + ttl_s
            return wait

    def release(self, owner: str) -> None:
        with self._lock:
            self._holders.pop(owner, None)


# KEYS[1] the admission times (newest first); ARGV amount, guarded span. Redis's clock, so every
# host agrees. Returns nil when admitted, else the seconds to wait (as a string: Lua numbers
# become integers in replies).
_TAKE = """
local t = redis.call('time')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local amount, span = tonumber(ARGV[1]), tonumber(ARGV[2])
local oldest = redis.call('lindex', KEYS[1], amount - 1)
if oldest and tonumber(oldest) > now - span then
  return tostring(tonumber(oldest) + span - now)
end
redis.call('lpush', KEYS[1], string.format('%.6f', now))
redis.call('ltrim', KEYS[1], 0, amount - 1)
redis.call('expire', KEYS[1], math.ceil(span))
return false
"""
_ACQUIRE = """
redis.call('zremrangebyscore', KEYS[1], '-inf', ARGV[1])
if redis.call('zscore', KEYS[1], ARGV[3]) then return 1 end
if redis.call('zcard', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('zadd', KEYS[1], ARGV[2], ARGV[3])
return 1
"""


class RedisGate:
    """The fleet's gate in Redis: every worker process shares the same window and slots."""

    def __init__(self, client: RedisClient, rate: str | None, max_inflight: int | None) -> None:
        self._client = client
        self._rate = parse_rate(rate) if rate else None
        self._max = max_inflight
        self._acquire = client.register_script(_ACQUIRE)
        self._take = client.register_script(_TAKE)
        self._key = INFLIGHT_KEY

    def admit(self, owner: str, ttl_s: float) -> float | None:
        with redis_outage("call gate unavailable"):
            if self._max is not None and not self._slot(owner, ttl_s, self._max):
                return MIN_WAIT_S * 5
            wait = self._rate_wait()
        if wait is not None:
            self.release(owner)
        return wait

    def _rate_wait(self) -> float | None:
        if self._rate is None:
            return None
        # One key per quota, so a changed EDITQUEUE_RATE_LIMIT starts a window of its own.
        key = rate_key(IDENTITY, self._rate.amount, self._rate.get_expiry())
        wait = self._take(keys=[key], args=[self._rate.amount, guarded_span_s(self._rate)])
        return None if wait is None else max(MIN_WAIT_S, float(wait))

    def _slot(self, owner: str, ttl_s: float, most: int) -> bool:
        now = time.time()
        return bool(self._acquire(keys=[self._key], args=[now, now + ttl_s, owner, most]))

    def release(self, owner: str) -> None:
        if self._max is None:
            return
        with redis_outage("cannot release call slot"):
            self._client.zrem(self._key, owner)
