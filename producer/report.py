"""A session's report on disk: exact turn images, the evolution strip, report.html, status.json.

Turn images are written byte for byte as stored (never re-encoded); only the strip is drawn.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from producer.report_html import render_html
from shared.catalog import pixel_size
from shared.images import extension_for, sniff_mime
from shared.sessions import SessionSnapshot
from shared.status_document import SessionStatus, TurnStatus

STRIP_HEIGHT_PX = 360
CAPTION_HEIGHT_PX = 30
GAP_PX = 8
FONT_SIZE_PX = 14
STRIP_QUALITY = 88
CAPTION_FONT = "DejaVuSans.ttf"  # found in the system font folders when installed
NOT_A_CHARACTER = "\uffff"
BACKGROUND = (255, 255, 255)
PLACEHOLDER = (220, 220, 220)
TEXT_COLOUR = (30, 30, 30)
SHORT_PROMPT_CHARS = 48
TIMES = "\u00d7"  # the multiplication sign of "2752x1536"

ReadBlob = Callable[[str], bytes]


@dataclass(frozen=True)
class Panel:
    """One turn in the strip: its image bytes (None when it has no image yet) and caption."""

    index: int
    caption: str
    data: bytes | None
    width: int  # the image's pixel size, for placeholders too
    height: int


def image_name(index: int, data: bytes) -> str:
    """`turn_01.jpg`: the extension comes from the sniffed bytes, not the declared type."""
    return f"turn_{index:02d}.{extension_for(sniff_mime(data) or '')}"


def short_prompt(prompt: str, limit: int = SHORT_PROMPT_CHARS) -> str:
    """The prompt's first words, on one line, cut at `limit` characters."""
    text = " ".join(prompt.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def caption(turn: TurnStatus) -> str:
    """`Turn 3 · Add tall walnut bookshelf… · 2752x1536` (with a multiplication sign)."""
    if turn.image is None:
        return f"Turn {turn.index} · {short_prompt(turn.prompt)} · {turn.state.value}"
    size = f"{turn.image.width}{TIMES}{turn.image.height}"
    return f"Turn {turn.index} · {short_prompt(turn.prompt)} · {size}"


def write_images(status: SessionStatus, read_blob: ReadBlob, out_dir: Path) -> dict[int, bytes]:
    """Every committed turn's image as `turn_NN.<ext>`; returns the bytes by turn index."""
    images: dict[int, bytes] = {}
    for turn in status.turns:
        if turn.image is not None:
            data = read_blob(turn.image.blob)
            (out_dir / image_name(turn.index, data)).write_bytes(data)
            images[turn.index] = data
    return images


def _panels(status: SessionStatus, snap: SessionSnapshot, images: dict[int, bytes]) -> list[Panel]:
    record = snap.record
    panels = []
    for turn in status.turns:
        request = snap.requests[turn.index]
        width, height = pixel_size(
            request.aspect_ratio or record.aspect_ratio, request.image_size or record.image_size
        )
        if turn.image is not None:
            width, height = turn.image.width, turn.image.height
        panels.append(Panel(turn.index, caption(turn), images.get(turn.index), width, height))
    return panels


def _thumbnail(panel: Panel, width: int) -> Image.Image:
    if panel.data is None:
        return Image.new("RGB", (width, STRIP_HEIGHT_PX), PLACEHOLDER)
    with Image.open(io.BytesIO(panel.data)) as image:
        image.draft("RGB", (width, STRIP_HEIGHT_PX))  # JPEG: decode at a reduced scale
        return image.convert("RGB").resize((width, STRIP_HEIGHT_PX), Image.Resampling.LANCZOS)


Font = ImageFont.ImageFont | ImageFont.FreeTypeFont


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font: Font, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while len(text) > 1 and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text.rstrip() + "…"


def _font() -> Font:
    try:
        return ImageFont.truetype(CAPTION_FONT, FONT_SIZE_PX)
    except OSError:
        return ImageFont.load_default(size=FONT_SIZE_PX)


def _has_glyph(font: Font, char: str) -> bool:
    missing = font.getmask(NOT_A_CHARACTER)
    return bytes(font.getmask(char)) != bytes(missing)


def build_strip(panels: list[Panel]) -> Image.Image:
    """The turns side by side at a common height, each captioned underneath."""
    widths = [max(1, round(p.width * STRIP_HEIGHT_PX / max(p.height, 1))) for p in panels]
    total = sum(widths) + GAP_PX * (len(panels) + 1)
    strip = Image.new("RGB", (total, STRIP_HEIGHT_PX + CAPTION_HEIGHT_PX + GAP_PX), BACKGROUND)
    draw = ImageDraw.Draw(strip)
    font = _font()
    plain = not _has_glyph(font, TIMES)
    x = GAP_PX
    for panel, width in zip(panels, widths, strict=True):
        strip.paste(_thumbnail(panel, width), (x, GAP_PX))
        label = panel.caption.replace(TIMES, "x") if plain else panel.caption
        text = _fit_text(draw, label, font, width)
        draw.text((x, GAP_PX + STRIP_HEIGHT_PX + 6), text, fill=TEXT_COLOUR, font=font)
        x += width + GAP_PX
    return strip


def write_report(
    status: SessionStatus, snap: SessionSnapshot, read_blob: ReadBlob, out_dir: Path
) -> Path:
    """Write the images, `strip.jpg`, `report.html` and `status.json`; returns the page's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    images = write_images(status, read_blob, out_dir)
    names = {n: image_name(n, data) for n, data in images.items()}
    has_strip = bool(status.turns)
    if has_strip:
        build_strip(_panels(status, snap, images)).save(
            out_dir / "strip.jpg", "JPEG", quality=STRIP_QUALITY
        )
    (out_dir / "status.json").write_text(status.model_dump_json(indent=2) + "\n")
    page = out_dir / "report.html"
    page.write_text(render_html(status, snap, names, has_strip=has_strip))
    return page
