"""BlobCache: one download per blob, verified bytes, idempotent puts and size-bounded eviction."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from shared.blobcache import BlobCache, sha256_hex
from shared.errors import ObjectNotFound, StorageUnavailable
from shared.keys import blob_key
from shared.storage import MemoryStore


class CountingStore(MemoryStore):
    """A MemoryStore that counts downloads and can make them slow, to widen race windows."""

    def __init__(self, delay_s: float = 0.0) -> None:
        super().__init__()
        self.delay_s = delay_s
        self.downloads: list[str] = []
        self.conditional_puts = 0

    def download_to(self, key: str, path: Path) -> None:
        self.downloads.append(key)
        time.sleep(self.delay_s)
        super().download_to(key, path)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        self.conditional_puts += 1
        return super().put_if_absent(key, data)


def _seed(store: MemoryStore, data: bytes) -> str:
    sha = hashlib.sha256(data).hexdigest()
    store.put(f"blobs/sha256/{sha}", data)
    return sha


def test_blob_key_is_the_content_address() -> None:
    sha = sha256_hex(b"pixels")
    assert blob_key(sha) == f"blobs/sha256/{hashlib.sha256(b'pixels').hexdigest()}"


@pytest.mark.parametrize(
    "bad", ["", "abc", "A" * 64, "g" * 64, "../" + "a" * 61, "a" * 63, "a" * 65]
)
def test_blob_key_refuses_anything_but_64_lowercase_hex(bad: str) -> None:
    with pytest.raises(ValueError):
        blob_key(bad)


def test_path_downloads_once_and_then_hits_the_local_file(tmp_path: Path) -> None:
    store = CountingStore()
    sha = _seed(store, b"image bytes")
    cache = BlobCache(store, tmp_path)
    first = cache.path(sha)
    second = cache.path(sha)
    assert first == second and first.read_bytes() == b"image bytes"
    assert len(store.downloads) == 1
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.bytes_downloaded) == (1, 1, len(b"image bytes"))


def test_twelve_threads_asking_at_once_cause_one_download(tmp_path: Path) -> None:
    store = CountingStore(delay_s=0.2)
    data = os.urandom(256 * 1024)
    sha = _seed(store, data)
    cache = BlobCache(store, tmp_path)
    barrier = threading.Barrier(12)
    paths: list[Path] = []

    def ask() -> None:
        barrier.wait()
        paths.append(cache.path(sha))

    threads = [threading.Thread(target=ask) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.downloads == [blob_key(sha)]
    assert len(paths) == 12 and all(p.read_bytes() == data for p in paths)
    assert (cache.stats().hits, cache.stats().misses) == (11, 1)
    assert cache.stats().bytes_downloaded == len(data)


def test_different_blobs_download_in_parallel(tmp_path: Path) -> None:
    store = CountingStore(delay_s=0.3)
    shas = [_seed(store, bytes([i]) * 100) for i in range(4)]
    cache = BlobCache(store, tmp_path)
    threads = [threading.Thread(target=cache.path, args=(sha,)) for sha in shas]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.monotonic() - started < 0.9  # 4 x 0.3 s if they were serialised
    assert len(store.downloads) == 4


def test_two_caches_sharing_a_directory_both_end_with_the_right_file(tmp_path: Path) -> None:
    # stands in for two processes: separate locks, same directory, atomic renames
    store = CountingStore(delay_s=0.1)
    sha = _seed(store, b"shared blob")
    caches = [BlobCache(store, tmp_path), BlobCache(store, tmp_path)]
    threads = [threading.Thread(target=c.path, args=(sha,)) for c in caches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (tmp_path / sha).read_bytes() == b"shared blob"
    assert sorted(p.name for p in tmp_path.iterdir()) == [sha]


def test_a_blob_whose_bytes_do_not_match_its_hash_is_refused_and_not_kept(
    tmp_path: Path,
) -> None:
    store = CountingStore()
    sha = sha256_hex(b"the real image")
    store.put(blob_key(sha), b"corrupted bytes")
    cache = BlobCache(store, tmp_path)
    with pytest.raises(StorageUnavailable, match=sha):
        cache.path(sha)
    assert list(tmp_path.iterdir()) == []
    assert cache.stats().misses == 0
    store.put(blob_key(sha), b"the real image")  # repaired: the next call downloads again
    assert cache.read(sha) == b"the real image"


def test_a_missing_blob_raises_object_not_found_and_leaves_no_temp_file(tmp_path: Path) -> None:
    cache = BlobCache(MemoryStore(), tmp_path)
    with pytest.raises(ObjectNotFound):
        cache.path(sha256_hex(b"never stored"))
    assert list(tmp_path.iterdir()) == []


def test_put_stores_by_hash_seeds_the_cache_and_is_idempotent(tmp_path: Path) -> None:
    store = CountingStore()
    cache = BlobCache(store, tmp_path)
    sha = cache.put(b"generated image")
    assert sha == hashlib.sha256(b"generated image").hexdigest()
    assert store.get(f"blobs/sha256/{sha}") == b"generated image"
    assert cache.put(b"generated image") == sha
    assert store.conditional_puts == 2
    assert cache.read(sha) == b"generated image"
    assert store.downloads == []  # served from the seeded file


def test_read_survives_the_file_being_evicted_by_someone_else(tmp_path: Path) -> None:
    store = CountingStore()
    sha = _seed(store, b"blob")
    cache = BlobCache(store, tmp_path)
    cache.path(sha).unlink()  # another process evicted it
    assert cache.read(sha) == b"blob"
    assert len(store.downloads) == 2


def test_eviction_removes_the_least_recently_used_files_beyond_the_limit(tmp_path: Path) -> None:
    store = CountingStore()
    shas = [_seed(store, bytes([i]) * 1000) for i in range(3)]
    cache = BlobCache(store, tmp_path, max_bytes=2500)
    for age, sha in enumerate(shas[:2]):
        os.utime(cache.path(sha), (1_000_000 + age, 1_000_000 + age))  # shas[0] is the oldest
    cache.path(shas[0])  # a hit refreshes it: shas[1] is now the least recently used
    assert (tmp_path / shas[0]).stat().st_mtime > 1_000_001
    cache.path(shas[2])  # 3000 bytes > 2500: one file must go
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([shas[0], shas[2]])
    assert cache.stats().evictions == 1


def test_eviction_never_removes_the_file_just_handed_out(tmp_path: Path) -> None:
    store = CountingStore()
    small = _seed(store, b"s" * 100)
    big = _seed(store, b"b" * 5000)
    cache = BlobCache(store, tmp_path, max_bytes=1000)
    cache.path(small)
    path = cache.path(big)  # alone exceeds the limit, but the caller is about to read it
    assert path.read_bytes() == b"b" * 5000
    assert not (tmp_path / small).exists()


def test_the_directory_is_listed_at_the_first_write_then_per_twentieth_of_the_cap(
    tmp_path: Path,
) -> None:
    store = CountingStore()
    shas = [_seed(store, bytes([i]) * 1000) for i in range(25)]
    cache = BlobCache(store, tmp_path, max_bytes=100_000)  # a listing per 5,000 bytes added
    cache.path(shas[0])
    assert cache.stats().scans == 1  # at once: a short-lived process keeps the cap too
    for sha in shas[1:5]:
        cache.path(sha)
    assert cache.stats().scans == 1
    cache.path(shas[5])
    assert cache.stats().scans == 2
    for sha in shas[6:]:
        cache.path(sha)
    assert cache.stats().scans == 5
    assert cache.stats().evictions == 0


def test_a_cache_over_its_cap_is_trimmed_by_the_next_process_that_writes(tmp_path: Path) -> None:
    store = CountingStore()
    shas = [_seed(store, bytes([i]) * 1000) for i in range(12)]
    for sha in shas[:10]:  # ten processes (e.g. CLI commands) that each wrote one blob
        BlobCache(store, tmp_path, max_bytes=20_000).path(sha)
    BlobCache(store, tmp_path, max_bytes=3_000).path(shas[10])
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) <= 3_000


def test_without_a_limit_nothing_is_evicted(tmp_path: Path) -> None:
    store = CountingStore()
    shas = [_seed(store, bytes([i]) * 1000) for i in range(5)]
    cache = BlobCache(store, tmp_path)
    for sha in shas:
        cache.path(sha)
    assert len(list(tmp_path.iterdir())) == 5
    assert cache.stats().evictions == 0


def test_files_kept_beside_the_blobs_count_against_the_cap(tmp_path: Path) -> None:
    store = CountingStore()
    sha = _seed(store, b"a" * 1000)
    cache = BlobCache(store, tmp_path, max_bytes=100_000)  # a listing per 5,000 bytes added
    cache.path(sha)
    assert cache.stats().scans == 1
    cache.keep_beside(f"{sha}.pixels-512.npy", lambda handle: handle.write(b"p" * 6000))
    assert (tmp_path / f"{sha}.pixels-512.npy").read_bytes() == b"p" * 6000
    assert cache.stats().scans == 2  # its 6,000 bytes crossed the twentieth on their own


def test_a_write_that_fails_leaves_neither_the_file_nor_a_temp_file(tmp_path: Path) -> None:
    cache = BlobCache(MemoryStore(), tmp_path)

    def half_then_full_disk(handle: Any) -> None:
        handle.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        cache.keep_beside("x.pixels-512.npy", half_then_full_disk)
    assert list(tmp_path.iterdir()) == []


def test_a_file_kept_beside_the_blobs_is_evicted_by_its_last_use_not_its_writing(
    tmp_path: Path,
) -> None:
    store = CountingStore()
    cache = BlobCache(store, tmp_path, max_bytes=2500)
    for age, name in enumerate(("a.pixels-512.npy", "b.pixels-512.npy")):
        cache.keep_beside(name, lambda handle: handle.write(b"p" * 1000))
        os.utime(tmp_path / name, (1_000_000 + age, 1_000_000 + age))  # a is the older write
    assert cache.beside("a.pixels-512.npy").read_bytes() == b"p" * 1000  # a use refreshes a
    cache.path(_seed(store, b"c" * 1000))  # 3000 bytes > 2500: one file must go
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".npy")) == [
        "a.pixels-512.npy"
    ]
    assert cache.beside("gone.npy") == tmp_path / "gone.npy"  # no file: nothing made
    assert not (tmp_path / "gone.npy").exists()
