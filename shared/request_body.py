"""A request body of known size, produced in chunks so it never has to sit whole in memory."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

BODY_CHUNK_BYTES = 64 * 1024


class RequestBody(Protocol):
    """A request body of known size, produced in chunks so it never has to sit whole in memory."""

    @property
    def content_length(self) -> int:
        """Exact number of bytes `chunks()` yields."""
        ...

    def chunks(self) -> Iterator[bytes]:
        """The body, in order; may be called again for a fresh pass."""
        ...


class BytesBody:
    """A request body already in memory."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    @property
    def content_length(self) -> int:
        """Exact number of bytes `chunks()` yields."""
        return len(self._data)

    def chunks(self) -> Iterator[bytes]:
        """The bytes in slices of BODY_CHUNK_BYTES."""
        for start in range(0, len(self._data), BODY_CHUNK_BYTES):
            yield self._data[start : start + BODY_CHUNK_BYTES]
