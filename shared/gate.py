"""The fleet-wide gate before every API call: a rate limit (the `limits` library, moving window)
and a cap on calls in flight (a lease-based semaphore that survives a killed holder).

Both live in Redis for a fleet, or in memory for one process. A refused caller is told how long
to wait; it re-enqueues itself with that countdown instead of sleeping in a worker slot.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol, cast

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from shared.errors import InvalidSpec, StorageUnavailable

IDENTITY = "gemini-calls"
MIN_WAIT_S = 0.2


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


class _RateWindow:
    """A moving-window limit on a `limits` storage (Redis or memory)."""

    def __init__(self, item: RateLimitItem, storage: Storage) -> None:
        self.item = item
        self.limiter = MovingWindowRateLimiter(storage)

    def take(self) -> float | None:
        if self.limiter.hit(self.item, IDENTITY):
            return None
        stats = self.limiter.get_window_stats(self.item, IDENTITY)
        return max(MIN_WAIT_S, stats.reset_time - time.time())


class OpenGate:
    """No limits configured."""

    def admit(self, owner: str, ttl_s: float) -> float | None:
        return None

    def release(self, owner: str) -> None:
        return None


class MemoryGate:
    """One process's gate (the embedded run, unit tests)."""

    def __init__(self, rate: str | None, max_inflight: int | None) -> None:
        self._rate = _RateWindow(parse_rate(rate), MemoryStorage()) if rate else None
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


_ACQUIRE = """
redis.call('zremrangebyscore', KEYS[1], '-inf', ARGV[1])
if redis.call('zscore', KEYS[1], ARGV[3]) then return 1 end
if redis.call('zcard', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('zadd', KEYS[1], ARGV[2], ARGV[3])
return 1
"""


class RedisGate:
    """The fleet's gate in Redis: every worker process shares the same window and slots."""

    def __init__(self, client: Any, url: str, rate: str | None, max_inflight: int | None) -> None:
        self._client = client
        storage = cast(Storage, storage_from_string(url)) if rate else None
        self._rate = _RateWindow(parse_rate(rate), storage) if rate and storage else None
        self._max = max_inflight
        self._acquire = client.register_script(_ACQUIRE)
        self._key = "eq:inflight"

    def admit(self, owner: str, ttl_s: float) -> float | None:
        try:
            if self._max is not None and not self._slot(owner, ttl_s):
                return MIN_WAIT_S * 5
            wait = self._rate.take() if self._rate else None
        except Exception as exc:  # redis-py and limits raise their own types
            raise StorageUnavailable(f"redis: call gate unavailable: {exc}") from exc
        if wait is not None:
            self.release(owner)
        return wait

    def _slot(self, owner: str, ttl_s: float) -> bool:
        now = time.time()
        return bool(self._acquire(keys=[self._key], args=[now, now + ttl_s, owner, self._max]))

    def release(self, owner: str) -> None:
        if self._max is None:
            return
        try:
            self._client.zrem(self._key, owner)
        except Exception as exc:
            raise StorageUnavailable(f"redis: cannot release call slot: {exc}") from exc
