"""A machine's cache of small store objects (JSON), addressed by their MD5, which is the ETag
S3 gives an object written in one PUT.

A session read lists the session's keys with their ETags (one LIST) and reads only the objects
whose bytes this machine has not seen: objects written once (`session.json`, `result.json`) and
a request at a given revision are read once per machine, and what a worker writes or reads itself
is cached as it goes. Keyed by content, an entry can never be stale: a replaced object has a new
ETag. Where ETags are not MD5s (multipart uploads, SSE-KMS) every read is a miss, never wrong.
Entries are files in the blob cache directory (`obj-<md5>`, `k-<sha256 of store+key>`: shared
by the machine's worker processes, written by atomic renames, evicted with the blobs under its
size cap) and the most recent ones stay in memory.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from collections import OrderedDict
from contextlib import suppress
from pathlib import Path

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
            fd, name = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(name, path)
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
                fd, temp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
                with os.fdopen(fd, "wb") as handle:
                    handle.write(content_tag(data).encode())
                os.replace(temp, name)

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
