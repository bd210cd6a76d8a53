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


_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}


def _too_many_pixels(source: str, size: str, max_pixels: int | None) -> str:
    limit = f"{max_pixels:,}" if max_pixels is not None else "Pillow's"
    return (
        f"{source}: {size} is over the limit of {limit} pixels (EDITQUEUE_MAX_IMAGE_PIXELS); "
        "downscale it"
    )


def require_image(data: bytes, source: str, max_pixels: int | None = None) -> str:
    """The MIME type of user-supplied bytes, decoded (not just sniffed) within `max_pixels`.

    The size is read from the header first, so a decompression bomb is refused before its
    pixels are decoded; InvalidSpec naming `source` and, for the cap, its setting.
    """
    mime = sniff_mime(data)
    if mime is None:
        raise InvalidSpec(f"{source}: not a JPEG, PNG, GIF or WebP image; pass an image file")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if max_pixels is not None and width * height > max_pixels:
                raise InvalidSpec(_too_many_pixels(source, f"{width}x{height}", max_pixels))
            image.load()
            decoded = _FORMATS.get(str(image.format))
    except Image.DecompressionBombError:  # Pillow's own cap, far above ours, fired on open
        raise InvalidSpec(_too_many_pixels(source, "its size", max_pixels)) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        decoded = None
    if decoded != mime:
        raise InvalidSpec(f"{source}: looks like {mime} but does not decode as one; re-export it")
    return mime
