"""The Redis coordinator: leases, the live turn index and the session index (redis-py only here)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeAlias, TypeVar, cast
from urllib.parse import urlparse

import redis
from redis.sentinel import Sentinel

from shared.coordination import LiveTurn, with_beat
from shared.errors import StorageUnavailable
from shared.keys import (
    BATCH_DUE_KEY,
    EPOCH_KEY,
    PARKED_KEY,
    RUNNING_KEY,
    SESSIONS_KEY,
    beat_key,
    idempotency_key,
    lease_key,
    live_key,
)

# Broker URLs that name Redis Sentinels rather than one Redis, in kombu's form
#     sentinel://[:password@]host:port[/db];sentinel://host2:port2;...
# The password and db of the first URL that gives them apply to the master
# (kombu reads them the same way); the Sentinels themselves are asked without a password.
SENTINEL_SCHEME = "sentinel://"
DEFAULT_SENTINEL_PORT = 26379


def is_sentinel(url: str) -> bool:
    """True when the URL names Sentinels rather than one Redis."""
    return url.startswith(SENTINEL_SCHEME)


def sentinel_parts(url: str) -> tuple[list[tuple[str, int]], int, str | None]:
    """(Sentinel addresses, db, master password) of a `sentinel://` URL; ValueError if bad."""
    hosts: list[tuple[str, int]] = []
    db, password = 0, None
    for part in url.split(";"):
        parsed = urlparse(part.strip())
        if parsed.scheme != "sentinel" or not parsed.hostname:
            raise ValueError(f"{part!r} is not sentinel://host:port")
        hosts.append((parsed.hostname, parsed.port or DEFAULT_SENTINEL_PORT))
        if parsed.path.strip("/"):
            db = int(parsed.path.strip("/"))
        password = password or parsed.password
    return hosts, db, password


T = TypeVar("T")
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_ACQUIRE = """
local holder = redis.call('get', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


PING_TIMEOUT_S = 3.0
DEFAULT_MASTER = "mymaster"

RedisClient: TypeAlias = (
    redis.Redis
)  # what `redis_client` builds; the worker's gate and ledger drive it


@contextmanager
def redis_outage(what: str) -> Iterator[None]:
    """Re-raise redis-py's errors (connection, timeout, a refused reply) as StorageUnavailable
    naming `what`; anything else, a bug included, goes up as it is."""
    try:
        yield
    except redis.RedisError as exc:
        raise StorageUnavailable(f"redis: {what}: {exc}") from exc


def redis_client(url: str, master: str, **options: Any) -> redis.Redis:
    """A client of the Redis at `url`, or of the current master behind the Sentinels that a
    `sentinel://` URL names (it finds the new master after a failover)."""
    if not is_sentinel(url):
        return redis.Redis.from_url(url, **options)
    hosts, db, password = sentinel_parts(url)
    timeout = options.get("socket_timeout")
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        hosts, socket_timeout=timeout, socket_connect_timeout=timeout
    )
    client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        master, db=db, password=password, **options
    )
    return client


def ping(url: str, timeout_s: float = PING_TIMEOUT_S, master: str = DEFAULT_MASTER) -> None:
    """Raise StorageUnavailable unless the Redis at `url` (or the Sentinels' master) answers PING
    within `timeout_s`."""
    client = redis_client(
        url,
        master,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry_on_timeout=False,
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        raise StorageUnavailable(f"{type(exc).__name__}: {exc}") from exc
    finally:
        client.close()


class RedisCoordinator:
    """Coordination state in Redis; every key starts with `eq:` and holds ids, never images."""

    def __init__(self, url: str, master: str = DEFAULT_MASTER) -> None:
        self.client = redis_client(url, master, socket_timeout=10, health_check_interval=30)
        self._acquire = self.client.register_script(_ACQUIRE)
        self._release = self.client.register_script(_RELEASE)

    def acquire_lease(self, key: str, owner: str, ttl_s: float) -> bool:
        try:
            return bool(self._acquire(keys=[lease_key(key)], args=[owner, int(ttl_s * 1000)]))
        except redis.RedisError as exc:
            raise StorageUnavailable(f"redis: cannot take lease {key}: {exc}") from exc

    def release_lease(self, key: str, owner: str) -> None:
        try:
            self._release(keys=[lease_key(key)], args=[owner])
        except redis.RedisError as exc:
            raise StorageUnavailable(f"redis: cannot release lease {key}: {exc}") from exc

    def set_live(self, sid: str, index: int, live: LiveTurn) -> None:
        self._call(lambda: self.client.hset(live_key(sid), str(index), live.model_dump_json()))

    def clear_live(self, sid: str, index: int) -> None:
        self._call(lambda: self.client.hdel(live_key(sid), str(index)))

    def live(self, sid: str) -> dict[int, LiveTurn]:
        def both() -> list[dict[bytes, bytes]]:
            pipe = self.client.pipeline(transaction=False)
            pipe.hgetall(live_key(sid))
            pipe.hgetall(beat_key(sid))
            return cast(list[dict[bytes, bytes]], pipe.execute())

        raw, beats = self._call(both)
        found = {int(k): LiveTurn.model_validate_json(v) for k, v in raw.items()}
        until = {int(k): float(v) for k, v in beats.items()}
        return {n: with_beat(live, until.get(n)) for n, live in found.items()}

    def beat(self, sid: str, index: int, until: float) -> None:
        def write() -> None:
            pipe = self.client.pipeline(transaction=False)
            pipe.zadd(RUNNING_KEY, {f"{sid}|{index}": until})
            pipe.hset(beat_key(sid), str(index), repr(until))
            pipe.execute()

        self._call(write)

    def lapsed(self, now: float, limit: int) -> list[tuple[str, int]]:
        key = RUNNING_KEY
        raw = self._call(
            lambda: cast(list[bytes], self.client.zrangebyscore(key, "-inf", now, 0, limit))
        )
        members = (m.decode().rsplit("|", 1) for m in raw)
        return [(sid, int(index)) for sid, index in members]

    def drop_running(self, sid: str, index: int) -> None:
        def drop() -> None:
            pipe = self.client.pipeline(transaction=False)
            pipe.zrem(RUNNING_KEY, f"{sid}|{index}")
            pipe.hdel(beat_key(sid), str(index))
            pipe.execute()

        self._call(drop)

    def track_session(self, sid: str) -> None:
        self._call(lambda: self.client.sadd(SESSIONS_KEY, sid))

    def tracked_sessions(self) -> list[str]:
        members = self._call(lambda: cast(set[bytes], self.client.smembers(SESSIONS_KEY)))
        return sorted(m.decode() for m in members)

    def _call(self, op: Callable[[], T]) -> T:
        try:
            return op()
        except redis.RedisError as exc:
            raise StorageUnavailable(f"redis: {exc}") from exc

    def index_park(self, sid: str, index: int, due_at: float) -> None:
        self._call(lambda: self.client.zadd(PARKED_KEY, {f"{sid}|{index}": due_at}))

    def due_parks(self, now: float, limit: int) -> list[tuple[str, int]]:
        key = PARKED_KEY
        raw = self._call(
            lambda: cast(list[bytes], self.client.zrangebyscore(key, "-inf", now, 0, limit))
        )
        members = (m.decode().rsplit("|", 1) for m in raw)
        return [(sid, int(index)) for sid, index in members]

    def drop_park(self, sid: str, index: int) -> None:
        self._call(lambda: self.client.zrem(PARKED_KEY, f"{sid}|{index}"))

    def mark_batch_due(self, sid: str, index: int, attempt: int, at: float) -> None:
        value = f"{attempt}|{at}"
        self._call(lambda: self.client.hset(BATCH_DUE_KEY, f"{sid}|{index}", value))

    def batch_due(self) -> dict[tuple[str, int], tuple[int, float]]:
        key = BATCH_DUE_KEY
        raw = self._call(lambda: cast(dict[bytes, bytes], self.client.hgetall(key)))
        due: dict[tuple[str, int], tuple[int, float]] = {}
        for field, value in raw.items():
            sid, index = field.decode().rsplit("|", 1)
            attempt, at = value.decode().split("|", 1)
            due[(sid, int(index))] = (int(attempt), float(at))
        return due

    def drop_batch_due(self, sid: str, index: int) -> None:
        self._call(lambda: self.client.hdel(BATCH_DUE_KEY, f"{sid}|{index}"))

    def has_epoch(self) -> bool:
        return bool(self._call(lambda: self.client.exists(EPOCH_KEY)))

    def mark_epoch(self) -> None:
        self._call(lambda: self.client.set(EPOCH_KEY, "1"))


_SWAP = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""


class RedisIdempotencyStore:
    """Idempotency keys in Redis (`eq:idem:<hash>`), each with its own expiry."""

    def __init__(self, url: str, master: str = DEFAULT_MASTER) -> None:
        self.client = redis_client(url, master, socket_timeout=10, health_check_interval=30)
        self._swap = self.client.register_script(_SWAP)
        self._release = self.client.register_script(_RELEASE)

    def claim(self, key: str, value: bytes, ttl_s: float) -> bytes | None:
        full = idempotency_key(key)
        for _ in range(3):  # the holder may expire between SET NX and GET
            if self._call(lambda: self.client.set(full, value, nx=True, px=int(ttl_s * 1000))):
                return None
            held = self._call(lambda: cast(bytes | None, self.client.get(full)))
            if held is not None:
                return held
        raise StorageUnavailable(f"redis: idempotency key {key} kept changing")

    def swap(self, key: str, expected: bytes, value: bytes, ttl_s: float) -> bool:
        args: list[bytes | int] = [expected, value, int(ttl_s * 1000)]
        return bool(self._call(lambda: self._swap(keys=[idempotency_key(key)], args=args)))

    def release(self, key: str, expected: bytes) -> None:
        self._call(lambda: self._release(keys=[idempotency_key(key)], args=[expected]))

    def _call(self, op: Callable[[], T]) -> T:
        try:
            return op()
        except redis.RedisError as exc:
            raise StorageUnavailable(f"redis: {exc}") from exc
