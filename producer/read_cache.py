"""Reads of objects that never change, kept in memory: for polling a batch again and again.

`session.json` and `result.json` are written once and never rewritten (DESIGN.md), so a watch
loop reads each of them once; listings and every other object are read afresh on each poll.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from shared.keys import WRITTEN_ONCE
from shared.storage import ObjectStore


class ImmutableReadCache:
    """An ObjectStore that remembers the bytes of write-once objects; the rest passes through."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._cached: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes:
        with self._lock:
            cached = self._cached.get(key)
        if cached is not None:
            return cached
        data = self.store.get(key)
        if key.endswith(WRITTEN_ONCE):
            with self._lock:
                self._cached[key] = data
        return data

    def put(self, key: str, data: bytes) -> None:
        self.store.put(key, data)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        return self.store.put_if_absent(key, data)

    def exists(self, key: str) -> bool:
        return self.store.exists(key)

    def list(self, prefix: str) -> Iterator[str]:
        return self.store.list(prefix)

    def list_tagged(self, prefix: str) -> Iterator[tuple[str, str]]:
        return self.store.list_tagged(prefix)

    def delete(self, key: str) -> None:
        self.store.delete(key)

    def download_to(self, key: str, path: Path) -> None:
        self.store.download_to(key, path)
