"""Image bytes: what they really are (magic bytes, not the declared type) and how big."""

from __future__ import annotations

import io

from PIL import Image

from shared.errors import InvalidSpec

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp"}


def sniff_mime(data: bytes) -> str | None:
    """The MIME type the bytes' magic number says, or None when they are not a known image."""
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def extension_for(mime_type: str) -> str:
    """A file extension for a sniffed MIME type."""
    return _EXTENSIONS.get(mime_type, "bin")


def dimensions(data: bytes) -> tuple[int, int]:
    """Width and height read from the image header (the pixels are not decoded)."""
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def require_image(data: bytes, source: str) -> str:
    """The sniffed MIME type of user-supplied bytes; InvalidSpec naming `source` otherwise."""
    mime = sniff_mime(data)
    if mime is None:
        raise InvalidSpec(f"{source}: not a JPEG, PNG, GIF or WebP image; pass an image file")
    return mime
