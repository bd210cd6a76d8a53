"""Images sent inline (base64 or data: URLs) become files the CLI's checks can read.

That is every turn's reference `images` and its `mask`.

Every entry is replaced by a file name this module chooses, so an HTTP client can never point
the server at one of its own paths.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path
from typing import Any

from producer.checks import Loc, Problem
from producer.limits import DEFAULT_LIMITS, Limits

DATA_URL_RE = re.compile(r"data:[\w.+/-]*;base64,", re.IGNORECASE)


def decode_image(value: Any) -> bytes | None:
    """The bytes of one inline image, or None when it is not base64 text."""
    if not isinstance(value, str):
        return None
    text = DATA_URL_RE.sub("", value, count=1) if value[:5].lower() == "data:" else value
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def write_images(
    images: Any, folder: Path, loc: Loc, limits: Limits = DEFAULT_LIMITS
) -> tuple[Any, list[Problem]]:
    """Decode a turn's `images` into `folder`; the list of file names, or problems per entry.

    Past the per-turn count nothing is decoded; the file checks (size, pixels) come after.
    """
    if not isinstance(images, list):
        return images, []  # the spec's own validation names the wrong type
    if len(images) > limits.max_reference_images:
        message = (
            f"{len(images)} reference images are over the limit of "
            f"{limits.max_reference_images} per turn (EDITQUEUE_MAX_REFERENCE_IMAGES); drop some"
        )
        return [], [Problem(loc, message)]
    names: list[str] = []
    problems: list[Problem] = []
    for j, value in enumerate(images):
        data = decode_image(value)
        if data is None:
            message = "send the image bytes in base64 (or a data:image/...;base64, URL)"
            problems.append(Problem((*loc, j), message))
            continue
        name = f"{'-'.join(str(p) for p in loc)}-{j}.img"
        (folder / name).write_bytes(data)
        names.append(name)
    return names, problems


def turn_files(
    turn: dict[str, Any], folder: Path, loc: Loc, limits: Limits = DEFAULT_LIMITS
) -> tuple[dict[str, Any], list[Problem]]:
    """A turn with its `images` and its `mask` (one image, in base64) written to `folder`."""
    out = dict(turn)
    problems: list[Problem] = []
    if "images" in turn:
        out["images"], problems = write_images(turn["images"], folder, (*loc, "images"), limits)
    if isinstance(turn.get("mask"), str):  # any other type: the spec's validation names it
        names, found = write_images([turn["mask"]], folder, (*loc, "mask"), limits)
        out["mask"] = names[0] if names else None
        problems += [Problem((*loc, "mask"), p.message) for p in found]
    return out, problems


def session_images(
    data: dict[str, Any], folder: Path, limits: Limits = DEFAULT_LIMITS
) -> tuple[dict[str, Any], list[Problem]]:
    """A session body with every turn's images written to `folder` and named."""
    turns = data.get("turns")
    if not isinstance(turns, list) or len(turns) > limits.max_turns:
        return data, []  # the spec's validation names the problem; nothing is decoded
    problems: list[Problem] = []
    out: list[Any] = []
    for i, turn in enumerate(turns):
        if isinstance(turn, dict):
            turn, found = turn_files(turn, folder, ("turns", i), limits)
            problems += found
        out.append(turn)
    return {**data, "turns": out}, problems
