"""A `generateContent` body streamed from the blob cache, with an exact Content-Length.

The JSON around the images is rendered once; each image is base64-encoded on the fly from its
cached file, so an in-flight turn holds a few buffers rather than its whole history.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pybase64

from shared.errors import StorageUnavailable
from shared.history import BlobData

# A multiple of 3 raw bytes encodes to base64 without padding, so chunks concatenate exactly.
CHUNK_RAW_BYTES = 3 * 64 * 1024


def _placeholder_for(nonce: str) -> Callable[[Any], str]:
    def placeholder(value: Any) -> str:
        if isinstance(value, BlobData):
            return f"@@{nonce}:{value.sha256}:{value.size_bytes}@@"
        raise TypeError(f"cannot serialise {type(value).__name__}")

    return placeholder


def b64_length(size_bytes: int) -> int:
    """Length of the padded base64 text of `size_bytes` raw bytes."""
    return 4 * ((size_bytes + 2) // 3)


class StreamingBody:
    """Implements `shared.request_body.RequestBody` over a payload with `BlobData` placeholders."""

    def __init__(self, payload: dict[str, Any], blob_path: Callable[[str], Path]) -> None:
        # A fresh random nonce per body, so no prompt text can forge an image placeholder.
        nonce = secrets.token_hex(16)
        text = json.dumps(
            payload, default=_placeholder_for(nonce), ensure_ascii=False, separators=(",", ":")
        )
        mark = re.compile(rf'"@@{nonce}:([0-9a-f]{{64}}):(\d+)@@"')
        self._segments: list[bytes | BlobData] = []
        position = 0
        for match in mark.finditer(text):
            self._segments.append(text[position : match.start()].encode() + b'"')
            self._segments.append(BlobData(match.group(1), int(match.group(2))))
            self._segments.append(b'"')
            position = match.end()
        self._segments.append(text[position:].encode())
        self._blob_path = blob_path
        self.content_length = sum(
            b64_length(s.size_bytes) if isinstance(s, BlobData) else len(s) for s in self._segments
        )

    @property
    def image_count(self) -> int:
        """How many images the body streams."""
        return sum(isinstance(s, BlobData) for s in self._segments)

    def chunks(self) -> Iterator[bytes]:
        """The body in pieces; images are read and encoded one chunk at a time."""
        for segment in self._segments:
            if isinstance(segment, BlobData):
                yield from self._encoded(segment)
            elif segment:
                yield segment

    def _encoded(self, blob: BlobData) -> Iterator[bytes]:
        sent = 0
        with self._blob_path(blob.sha256).open("rb") as handle:
            while chunk := handle.read(CHUNK_RAW_BYTES):
                sent += len(chunk)
                yield pybase64.b64encode(chunk)
        if sent != blob.size_bytes:
            raise StorageUnavailable(
                f"cached blob {blob.sha256[:12]} has {sent} bytes, expected {blob.size_bytes}"
            )
