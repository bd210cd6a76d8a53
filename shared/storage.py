"""Object storage behind one small interface: a local directory, memory, or S3 (`shared/s3.py`)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

from shared.config import Settings
from shared.errors import InvalidSpec, ObjectNotFound, StorageUnavailable
from shared.keys import safe_key, safe_prefix


class ObjectStore(Protocol):
    """Keys are `/`-separated relative paths; values are bytes written whole."""

    def get(self, key: str) -> bytes:
        """The object's bytes; raises ObjectNotFound."""
        ...

    def put(self, key: str, data: bytes) -> None:
        """Write or replace the object."""
        ...

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Create the object only if no object has the key; True when this call created it."""
        ...

    def exists(self, key: str) -> bool:
        """True when the object exists."""
        ...

    def list(self, prefix: str) -> Iterator[str]:
        """Every key that starts with `prefix`, in lexical order."""
        ...

    def list_tagged(self, prefix: str) -> Iterator[tuple[str, str]]:
        """(key, tag) of every key under `prefix`; a tag is the MD5 of the bytes where the store
        knows it (S3's ETag of a single PUT), else any other string (never a hit in the cache)."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object if present."""
        ...

    def download_to(self, key: str, path: Path) -> None:
        """Stream the object into a local file (written atomically)."""
        ...


class LocalStore:
    """A directory on disk; create-if-absent is an atomic hard link, so exactly one writer wins."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / safe_key(key)

    def _temp(self, path: Path, data: bytes) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return Path(name)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ObjectNotFound(f"object {key} does not exist") from exc
        except OSError as exc:
            raise StorageUnavailable(f"cannot read {key}: {exc.strerror}") from exc

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        os.replace(self._temp(path, data), path)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        temp = self._temp(path, data)
        try:
            os.link(temp, path)
            return True
        except FileExistsError:
            return False
        finally:
            temp.unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> Iterator[str]:
        safe_prefix(prefix)
        base = self.root / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root
        if not base.is_dir():
            return
        found = (
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".tmp-")
        )
        yield from sorted(k for k in found if k.startswith(prefix))

    def list_tagged(self, prefix: str) -> Iterator[tuple[str, str]]:
        for key in self.list(prefix):  # local reads are cheap: no tag, no cache
            yield key, ""

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def download_to(self, key: str, path: Path) -> None:
        source = self._path(key)
        if not source.is_file():
            raise ObjectNotFound(f"object {key} does not exist")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        os.close(fd)
        shutil.copyfile(source, name)
        os.replace(name, path)


class MemoryStore:
    """The in-memory twin for unit tests."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes:
        try:
            return self.objects[safe_key(key)]
        except KeyError as exc:
            raise ObjectNotFound(f"object {key} does not exist") from exc

    def put(self, key: str, data: bytes) -> None:
        self.objects[safe_key(key)] = bytes(data)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        with self._lock:
            if safe_key(key) in self.objects:
                return False
            self.objects[key] = bytes(data)
            return True

    def exists(self, key: str) -> bool:
        return safe_key(key) in self.objects

    def list(self, prefix: str) -> Iterator[str]:
        safe_prefix(prefix)
        yield from sorted(k for k in list(self.objects) if k.startswith(prefix))

    def list_tagged(self, prefix: str) -> Iterator[tuple[str, str]]:
        for key in self.list(prefix):
            data = self.objects.get(key)
            if data is not None:
                yield key, hashlib.md5(data, usedforsecurity=False).hexdigest()

    def delete(self, key: str) -> None:
        self.objects.pop(safe_key(key), None)

    def download_to(self, key: str, path: Path) -> None:
        data = self.get(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(name, path)


def open_store(settings: Settings) -> ObjectStore:
    """The store named by `EDITQUEUE_STORE_URL`: `file:///path`, `s3://bucket/prefix` or `memory://`."""
    url = urlparse(settings.store_url)
    if url.scheme == "file":
        return LocalStore(Path(url.netloc + url.path).expanduser())
    if url.scheme == "s3":
        from shared.s3 import S3Store  # boto3 loads only for S3 users

        return S3Store(url.netloc, url.path.lstrip("/"), endpoint_url=settings.s3_endpoint_url)
    if url.scheme == "memory":
        return MemoryStore()
    raise InvalidSpec(
        f"EDITQUEUE_STORE_URL={settings.store_url!r}: use s3://bucket/prefix or file:///path"
    )
