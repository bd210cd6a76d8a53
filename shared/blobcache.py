"""The machine's cache of the object store, in one directory under one LRU size cap.

Image blobs (`BlobCache`): files named by their SHA-256, downloaded once per machine and verified.

Small store objects (`ObjectCache`: JSON), addressed by their MD5, which is the ETag S3 gives an
object written in one PUT. A session read lists the session's keys with their ETags (one LIST) and
reads only the objects whose bytes this machine has not seen: objects written once
(`session.json`, `result.json`) and a request at a given revision are read once per machine, and
what a worker writes or reads itself is cached as it goes. Keyed by content, an entry can never be
stale: a replaced object has a new ETag. Where ETags are not MD5s (multipart uploads, SSE-KMS)
every read is a miss, never wrong. Its entries are files beside the blobs (`obj-<md5>`,
`k-<sha256 of store+key>`: shared by the machine's worker processes, written by atomic renames,
evicted with the blobs under the size cap) and the most recent ones stay in memory.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from shared.errors import StorageUnavailable
from shared.keys import blob_key
from shared.metrics import record_blob_cache
from shared.storage import ObjectStore

TEMP_PREFIX = ".tmp-"
# A process lists the directory to evict only after it added this fraction of the cap: a listing
# stats every file, so doing it per turn would cost time in proportion to the cache's file count.
# Between listings the cache may overshoot by this fraction per process on the machine.
SCAN_EVERY_FRACTION = 0.05

__all__ = ["BlobCache", "BlobCacheStats", "ObjectCache", "content_tag", "sha256_hex"]


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
    scans: int = 0  # directory listings made to enforce the size cap


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
    least recently used files beyond the limit are removed at this process's first write and
    then whenever it has added `SCAN_EVERY_FRACTION` of the limit since its last look; open the
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
        self._scans = 0
        # bytes this process wrote since its last listing; the first write lists at once, so
        # short-lived processes (CLI commands) keep the cap too
        self._added = max_bytes or 0

    def stats(self) -> BlobCacheStats:
        """A snapshot of the counters."""
        with self._stats_lock:
            return BlobCacheStats(
                self._hits, self._misses, self._bytes_downloaded, self._evictions, self._scans
            )

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
        self._evict(keep=local, added=size)
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
            write_atomically(local, lambda handle: handle.write(data))
            self._evict(keep=local, added=len(data))
        return sha256

    def beside(self, name: str) -> Path:
        """The path of a file kept beside the blobs (`keep_beside`), marked as just used when it
        is there, so eviction takes it by its last use, as it takes a blob."""
        path = self.directory / name
        _touch(path)
        return path

    def keep_beside(self, name: str, write: Callable[[BinaryIO], object]) -> None:
        """Write a file made from a blob (`<sha256>.<what>`, e.g. its decoded pixels) into the
        cache, counted against the size cap as blobs are. OSError when the disk refuses."""
        path = self.directory / name
        write_atomically(path, write)
        self._evict(keep=path, added=_size(path))

    def _evict(self, keep: Path, added: int) -> None:
        if self.max_bytes is None:
            return
        with self._stats_lock:
            self._added += added
            if self._added < self.max_bytes * SCAN_EVERY_FRACTION:
                return
            self._added = 0
            self._scans += 1
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


def write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write `path` whole or not at all: a temp file beside it, renamed over it. A failed write
    leaves no temp file (eviction skips dot-files, so one would stay, uncounted, for good)."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(name, path)
    finally:
        Path(name).unlink(missing_ok=True)  # there only when the write failed


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


_MD5 = re.compile(r"[0-9a-f]{32}")
MEMORY_ENTRIES = 1024
OBJECT_PREFIX = "obj-"  # files in the blob cache directory: its LRU size cap covers them too


def _key_name(key: str) -> str:
    return "k-" + hashlib.sha256(key.encode()).hexdigest()


def content_tag(data: bytes) -> str:
    """The tag an object with these bytes is listed with (S3's ETag of a single PUT)."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class ObjectCache:
    """Bytes by content tag: on disk for the machine, the most recent in memory."""

    def __init__(self, directory: Path, namespace: str = "") -> None:
        self.directory = directory
        self.namespace = namespace  # the store's URL: keys of two stores never meet
        self.directory.mkdir(parents=True, exist_ok=True)
        self._memory: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, tag: str) -> bytes | None:
        """The bytes listed with `tag`, if this machine has them."""
        tag = tag.strip('"')
        if not _MD5.fullmatch(tag):
            return None  # not a single-PUT ETag (or no tag at all): read the store
        with self._lock:
            data = self._memory.get(tag)
            if data is not None:
                self._memory.move_to_end(tag)
                return data
        try:
            data = (self.directory / f"{OBJECT_PREFIX}{tag}").read_bytes()
        except (FileNotFoundError, OSError):
            return None
        if content_tag(data) != tag:  # a torn or foreign file: ignore it
            return None
        self._remember(tag, data)
        return data

    def put(self, data: bytes) -> str:
        """Keep `data` (read from or written to the store); returns its tag."""
        tag = content_tag(data)
        self._remember(tag, data)
        path = self.directory / f"{OBJECT_PREFIX}{tag}"
        if path.exists():
            return tag
        with suppress(OSError):  # a full disk costs a later read, nothing else
            write_atomically(path, lambda handle: handle.write(data))
        return tag

    def written_once(self, key: str) -> bytes | None:
        """A write-once object's bytes by its key (`session.json`, `result.json`), if seen."""
        return self.get_file(_key_name(self.namespace + key))

    def keep_written_once(self, key: str, data: bytes) -> None:
        """Remember a write-once object by its key (its bytes never change)."""
        self.put(data)
        with suppress(OSError):
            name = self.directory / _key_name(self.namespace + key)
            if not name.exists():
                tag = content_tag(data).encode()
                write_atomically(name, lambda handle: handle.write(tag))

    def get_file(self, name: str) -> bytes | None:
        """The bytes a key file points at (its content tag), if both are here."""
        try:
            tag = (self.directory / name).read_text()
        except (FileNotFoundError, OSError, UnicodeDecodeError):
            return None
        return self.get(tag)

    def _remember(self, tag: str, data: bytes) -> None:
        with self._lock:
            self._memory[tag] = data
            self._memory.move_to_end(tag)
            while len(self._memory) > MEMORY_ENTRIES:
                self._memory.popitem(last=False)
