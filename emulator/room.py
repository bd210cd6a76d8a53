"""A procedurally drawn living room: the image a first turn without a photo is derived from."""

from __future__ import annotations

from functools import lru_cache

from PIL import Image, ImageDraw

WALL_TOP = (214, 204, 188)
WALL_BOTTOM = (236, 229, 216)
FLOOR = (150, 112, 78)
FLOOR_LINE = (128, 94, 64)
SKY_TOP = (120, 170, 220)
SKY_BOTTOM = (205, 226, 240)
FRAME = (250, 250, 248)
SOFA = (88, 104, 128)
SOFA_SHADOW = (64, 76, 96)
RUG = (176, 64, 58)
FLOOR_START = 0.62  # fraction of the height where the floor begins


def _gradient(
    size: tuple[int, int], top: tuple[int, int, int], bottom: tuple[int, int, int]
) -> Image.Image:
    mask = Image.linear_gradient("L").resize(size, Image.Resampling.BILINEAR)
    return Image.composite(Image.new("RGB", size, bottom), Image.new("RGB", size, top), mask)


def _window(image: Image.Image, draw: ImageDraw.ImageDraw, w: int, h: int) -> None:
    left, top, right, bottom = int(w * 0.58), int(h * 0.12), int(w * 0.86), int(h * 0.48)
    image.paste(_gradient((right - left, bottom - top), SKY_TOP, SKY_BOTTOM), (left, top))
    frame = max(2, w // 200)
    draw.rectangle((left, top, right, bottom), outline=FRAME, width=frame)
    mid_x, mid_y = (left + right) // 2, (top + bottom) // 2
    draw.line((mid_x, top, mid_x, bottom), fill=FRAME, width=frame)
    draw.line((left, mid_y, right, mid_y), fill=FRAME, width=frame)


def _floor(draw: ImageDraw.ImageDraw, w: int, h: int) -> None:
    floor_y = int(h * FLOOR_START)
    draw.rectangle((0, floor_y, w, h), fill=FLOOR)
    for i in range(1, 8):  # planks converging a little, so the floor reads as depth
        x = w * i // 8
        draw.line((x, floor_y, x + (x - w // 2) // 3, h), fill=FLOOR_LINE, width=max(1, w // 600))
    draw.ellipse((int(w * 0.18), int(h * 0.80), int(w * 0.72), int(h * 0.95)), fill=RUG)


def _sofa(draw: ImageDraw.ImageDraw, w: int, h: int) -> None:
    left, right = int(w * 0.12), int(w * 0.52)
    back_top, seat_top, base = int(h * 0.42), int(h * 0.58), int(h * 0.76)
    arm = int(w * 0.035)
    draw.rounded_rectangle((left, back_top, right, seat_top), radius=arm // 2, fill=SOFA_SHADOW)
    draw.rectangle((left, seat_top, right, base), fill=SOFA)
    draw.rounded_rectangle(
        (left - arm, back_top + arm, left + arm // 2, base), radius=arm // 3, fill=SOFA_SHADOW
    )
    draw.rounded_rectangle(
        (right - arm // 2, back_top + arm, right + arm, base), radius=arm // 3, fill=SOFA_SHADOW
    )


@lru_cache(maxsize=8)
def _room(width: int, height: int) -> Image.Image:
    image = _gradient((width, height), WALL_TOP, WALL_BOTTOM)
    draw = ImageDraw.Draw(image)
    _window(image, draw, width, height)
    _floor(draw, width, height)
    _sofa(draw, width, height)
    return image


def synthetic_room(width: int, height: int) -> Image.Image:
    """A fresh RGB copy of the drawn room at this size (the drawing itself is cached)."""
    return _room(width, height).copy()
