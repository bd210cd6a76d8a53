"""A local content-addressed cache of the image blobs kept in the object store."""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from shared.errors import StorageUnavailable
from shared.keys import blob_key
from shared.metrics import record_blob_cache
from shared.storage import ObjectStore

TEMP_PREFIX = ".tmp-"

__all__ = ["BlobCache", "BlobCacheStats", "sha256_hex"]


def sha256_hex(data: bytes) -> str:
    """The lowercase hex SHA-256 of `data`: a blob's identity."""
    return hashlib.sha256(data).hexdigest()


def _file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@dataclass(frozen=True)
class BlobCacheStats:
    """Counters since the cache was created: local hits, downloads and bytes read from the store."""

    hits: int
    misses: int
    bytes_downloaded: int
    evictions: int


class _KeyedLocks:
    """One lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)

    def busy(self) -> set[str]:
        with self._guard:
            return set(self._locks)


class BlobCache:
    """Blobs as local files, downloaded once per machine and verified against their hash.

    Safe for threads (one download per blob at a time) and processes (atomic renames; two
    processes fetching the same blob both write identical bytes). With `max_bytes`, the
    least recently used files beyond the limit are removed after each download; open the
    returned path promptly (an open file survives removal).
    """

    def __init__(self, store: ObjectStore, directory: Path, max_bytes: int | None = None) -> None:
        self.store = store
        self.directory = directory
        self.max_bytes = max_bytes
        self.directory.mkdir(parents=True, exist_ok=True)
        self._locks = _KeyedLocks()
        self._stats_lock = threading.Lock()
        self._hits = self._misses = self._bytes_downloaded = self._evictions = 0

    def stats(self) -> BlobCacheStats:
        """A snapshot of the counters."""
        with self._stats_lock:
            return BlobCacheStats(self._hits, self._misses, self._bytes_downloaded, self._evictions)

    def _count(self, *, hits: int = 0, misses: int = 0, size: int = 0, evicted: int = 0) -> None:
        with self._stats_lock:
            self._hits += hits
            self._misses += misses
            self._bytes_downloaded += size
            self._evictions += evicted
        record_blob_cache(hits, misses, size)

    def path(self, sha256: str) -> Path:
        """A local file holding exactly the blob's bytes, downloaded on first use."""
        key = blob_key(sha256)
        local = self.directory / sha256
        if _touch(local):
            self._count(hits=1)
            return local
        with self._locks.hold(sha256):
            if _touch(local):
                self._count(hits=1)
                return local
            size = self._download(key, sha256, local)
        self._count(misses=1, size=size)
        self._evict(keep=local)
        return local

    def _download(self, key: str, sha256: str, local: Path) -> int:
        fd, name = tempfile.mkstemp(dir=self.directory, prefix=TEMP_PREFIX)
        os.close(fd)
        temp = Path(name)
        try:
            self.store.download_to(key, temp)
            actual = _file_sha256(temp)
            if actual != sha256:
                raise StorageUnavailable(f"blob {sha256} downloaded with SHA-256 {actual}")
            size = temp.stat().st_size
            os.replace(temp, local)
            return size
        finally:
            temp.unlink(missing_ok=True)

    def read(self, sha256: str) -> bytes:
        """The blob's bytes (through the local file)."""
        try:
            return self.path(sha256).read_bytes()
        except FileNotFoundError:
            # evicted by another thread or process between path() and the read
            return self.path(sha256).read_bytes()

    def put(self, data: bytes) -> str:
        """Store a blob (idempotent), seed the local file, and return its hex SHA-256."""
        sha256 = sha256_hex(data)
        self.store.put_if_absent(blob_key(sha256), data)
        local = self.directory / sha256
        if not _touch(local):
            fd, name = tempfile.mkstemp(dir=self.directory, prefix=TEMP_PREFIX)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(name, local)
            self._evict(keep=local)
        return sha256

    def _evict(self, keep: Path) -> None:
        if self.max_bytes is None:
            return
        busy = self._locks.busy()
        files: list[tuple[float, int, Path]] = []
        for entry in self.directory.iterdir():
            if entry.name.startswith(".") or entry == keep or entry.name in busy:  # temp, objects
                continue
            with suppress(FileNotFoundError):
                stat = entry.stat()
                files.append((stat.st_mtime, stat.st_size, entry))
        total = sum(size for _, size, _ in files) + _size(keep)
        evicted = 0
        for _, size, entry in sorted(files, key=lambda item: item[0]):
            if total <= self.max_bytes:
                break
            entry.unlink(missing_ok=True)
            total -= size
            evicted += 1
        self._count(evicted=evicted)


def _touch(path: Path) -> bool:
    """Mark a cached file as recently used; False when it is not cached."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    return True


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
