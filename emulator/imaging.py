"""The returned image: derived from the request's last image (or a drawn room), then edited.

Speed matters more than beauty here: benchmarks run hundreds of 2K/4K turns on two cores, so big
JPEGs are decoded at reduced scale where the target allows (`Image.draft`), same-size sources skip
resampling, and every edit is a single C-level pass (paste with mask, point LUT, small draws).
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageChops, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from emulator.config import ImageFormat
from emulator.image_faults import apply_frame_fault, off_colour, spill
from emulator.models import ImageModel, pixel_size
from emulator.room import FLOOR_START, synthetic_room

LINEAGE_TAG = "editqueue-emulator"
_LINEAGE_RE = re.compile(rf"{LINEAGE_TAG} generation=(\d+) parent=([0-9a-f]{{64}}|none)")
_HEX_COLOUR_RE = re.compile(r"#([0-9a-fA-F]{6})\b")
_EVENING_WORDS = ("evening", "dusk", "night", "sunset", "twilight")
WALL_FRACTION = FLOOR_START  # the upper part of the frame stands in for "the walls"
WALL_KEY_DISTANCE = 30  # of 255, in every channel: how far from the wall colour is still "wall"
WALL_KEY_REDUCE = 8  # the wall is found on a 1/8-size copy; its edge is then softened
WALL_SAMPLE_FRACTION = 0.04  # the top rows whose colour is "the wall"


class UnreadableImage(ValueError):
    """The request's image bytes could not be decoded."""


@dataclass(frozen=True)
class GeneratedImage:
    """Encoded output bytes plus the lineage written into them."""

    data: bytes
    mime_type: str
    width: int
    height: int
    generation: int
    parent: str  # sha256 hex of the source image bytes, or "none"


def lineage_comment(generation: int, parent: str) -> str:
    """The comment that records which image this one was derived from."""
    return f"{LINEAGE_TAG} generation={generation} parent={parent}"


def read_lineage(image: Image.Image) -> tuple[int, str] | None:
    """The (generation, parent) recorded in an opened image's comment, if the emulator made it."""
    raw = image.info.get("comment") or image.info.get("Comment")
    text = raw.decode("latin-1") if isinstance(raw, bytes) else str(raw or "")
    match = _LINEAGE_RE.search(text)
    return (int(match.group(1)), match.group(2)) if match else None


def _closest_aspect(profile: ImageModel, width: int, height: int) -> str:
    def distance(ratio: str) -> float:
        """How far this ratio is from the source's."""
        w, h = (int(x) for x in ratio.split(":"))
        return abs(w / h - width / height)

    return min(profile.aspect_ratios, key=distance)


def output_size(
    profile: ImageModel, aspect: str | None, size: str | None, source: Image.Image | None
) -> tuple[int, int]:
    """Pixel size of the reply; an omitted aspect ratio follows the source image, else 1:1."""
    if aspect is None and source is not None:
        aspect = _closest_aspect(profile, *source.size)
    return pixel_size(aspect, size)


def open_source(data: bytes) -> Image.Image:
    """Open image bytes lazily (header only), or UnreadableImage."""
    try:
        image = Image.open(io.BytesIO(data))
        image.size  # noqa: B018 - touching size proves the header parsed
        return image
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise UnreadableImage(str(exc)) from exc


def _fit(image: Image.Image, width: int, height: int) -> Image.Image:
    """Decode (at reduced scale when possible), centre-crop to the aspect, resize to the target."""
    image.draft("RGB", (width, height))
    try:
        rgb = image.convert("RGB")
    except OSError as exc:
        raise UnreadableImage(str(exc)) from exc
    if rgb.size == (width, height):
        return rgb
    src_w, src_h = rgb.size
    scale = max(width / src_w, height / src_h)
    crop_w, crop_h = round(width / scale), round(height / scale)
    left, top = (src_w - crop_w) // 2, (src_h - crop_h) // 2
    box = (left, top, left + crop_w, top + crop_h)
    return rgb.resize((width, height), Image.Resampling.BILINEAR, box=box, reducing_gap=2.0)


def _wall_mask(image: Image.Image) -> Image.Image:
    """White where the upper part of the frame has the colour of its top rows (the wall)."""
    upper = image.crop((0, 0, image.width, int(image.height * WALL_FRACTION)))
    small = upper.reduce(WALL_KEY_REDUCE) if min(upper.size) >= 8 * WALL_KEY_REDUCE else upper
    top = small.crop((0, 0, small.width, max(1, int(small.height * WALL_SAMPLE_FRACTION))))
    wall = top.resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    red, green, blue = ImageChops.difference(small, Image.new("RGB", small.size, wall)).split()
    distance = ImageChops.lighter(ImageChops.lighter(red, green), blue)
    key = distance.point(lambda v: 255 if v <= WALL_KEY_DISTANCE else 0)
    return key.resize(upper.size, Image.Resampling.BILINEAR)


def _paint_walls(image: Image.Image, colour: tuple[int, int, int]) -> None:
    image.paste(colour, (0, 0), _wall_mask(image))


def _evening(image: Image.Image) -> Image.Image:
    # One LUT pass: slightly darker overall, blue pulled down most, so the scene reads warmer.
    gains = (0.95, 0.88, 0.78)
    lut = [min(255, int(v * g)) for g in gains for v in range(256)]
    return image.point(lut)


def _marker(image: Image.Image, prompt: str, generation: int) -> None:
    digest = hashlib.sha256(f"{generation}:{prompt}".encode()).digest()
    radius = max(4, min(image.size) // 40)
    x = radius + digest[0] * (image.width - 2 * radius) // 255
    y = radius + digest[1] * (int(image.height * 0.8) - 2 * radius) // 255
    colour = (digest[2], digest[3], digest[4])
    ImageDraw.Draw(image).ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)


def apply_edit(
    image: Image.Image, prompt: str, generation: int, fault: str | None = None
) -> Image.Image:
    """A prompt-dependent change: walls painted #RRGGBB, warmer for evening, else a dot.

    `fault` "colour_off" paints the walls slightly off the colour; "edit_spill" also paints a
    patch of floor.
    """
    match = _HEX_COLOUR_RE.search(prompt)
    lowered = prompt.lower()
    colour = None
    if match:
        hex_colour = match.group(1)
        colour = (int(hex_colour[0:2], 16), int(hex_colour[2:4], 16), int(hex_colour[4:6], 16))
        _paint_walls(image, off_colour(colour) if fault == "colour_off" else colour)
    if fault == "edit_spill":
        spill(image, colour)
    if any(word in lowered for word in _EVENING_WORDS):
        image = _evening(image)
    if not match and not any(word in lowered for word in _EVENING_WORDS):
        _marker(image, prompt, generation)
    return image


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def draw_caption(image: Image.Image, generation: int) -> None:
    """Overwrite a thin band at the bottom with the turn number."""
    band = max(12, image.height // 40)
    top = image.height - band
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, top, image.width, image.height), fill=(24, 24, 28))
    draw.text(
        (band // 2, top + band // 8),
        f"emulator turn {generation}",
        fill=(235, 235, 235),
        font=_font(max(8, band * 3 // 4)),
    )


def encode(image: Image.Image, fmt: ImageFormat, quality: int, comment: str) -> tuple[bytes, str]:
    """Encoded bytes and their true MIME type, with the lineage comment embedded."""
    buffer = io.BytesIO()
    if fmt == "png":
        info = PngInfo()
        info.add_text("Comment", comment)
        # Level 1: PNG at 4K is already slow; smaller files are not worth seconds per turn.
        image.save(buffer, "PNG", pnginfo=info, compress_level=1)
        return buffer.getvalue(), "image/png"
    image.save(buffer, "JPEG", quality=quality, comment=comment.encode())
    return buffer.getvalue(), "image/jpeg"


@dataclass(frozen=True)
class Target:
    """What the request asked for: model limits, aspect ratio, size, encoding."""

    profile: ImageModel
    aspect_ratio: str | None = None
    image_size: str | None = None
    fmt: ImageFormat = "jpeg"
    quality: int = 92


def derive_image(
    source: bytes | None, prompt: str, target: Target, fault: str | None = None
) -> GeneratedImage:
    """The reply image: the source (or a drawn room) resized for `target`, edited, encoded.

    `fault` names an image fault (emulator/image_faults.py) to build into the image, or None.
    """
    if source is None:
        size = output_size(target.profile, target.aspect_ratio, target.image_size, None)
        base, generation, parent = synthetic_room(*size), 1, "none"
    else:
        opened = open_source(source)
        size = output_size(target.profile, target.aspect_ratio, target.image_size, opened)
        lineage = read_lineage(opened)
        generation = 1 + (lineage[0] if lineage else 0)
        parent = hashlib.sha256(source).hexdigest()
        base = _fit(opened, *size)
    edited = apply_edit(base, prompt, generation, fault)
    draw_caption(edited, generation)
    edited = apply_frame_fault(edited, fault)
    comment = lineage_comment(generation, parent)
    data, mime = encode(edited, target.fmt, target.quality, comment)
    return GeneratedImage(data, mime, size[0], size[1], generation, parent)
