"""What a turn's prompt asks for, as far as the quality verdicts need to know.

Plain keyword patterns, English only: a prompt that asks to reframe excuses a camera change, one
that asks for new lighting or a new look excuses a global colour shift, and one that asks to keep
the rest makes any change outside the edit count.
"""

from __future__ import annotations

import re

KEEP_THE_REST = re.compile(
    r"keep (?:all|everything|the rest)(?: else)?"
    r"|no (?:further|other) changes?"
    r"|preserv(?:e|es|ing)"
    r"|unchanged",
    re.IGNORECASE,
)
REFRAME = re.compile(
    r"\b(?:zoom(?:ed|ing)?(?: in| out)?|crop(?:ped|ping)?|re-?frame[ds]?|wider (?:shot|view|angle)"
    r"|close-?up|camera (?:angle|position)|(?:new|different|change the|another) (?:angle|viewpoint)"
    r"|rotate[ds]?|tilt(?:ed)?|pan (?:left|right|up|down)|outpaint(?:ing)?|aspect ratio"
    r"|extend the (?:scene|image|frame|canvas)|move the camera|bird'?s[- ]eye|from above)\b",
    re.IGNORECASE,
)
GLOBAL_LOOK = re.compile(
    r"\b(?:light(?:ing)?|evening|night(?:time)?|dusk|dawn|sunset|sunrise|daylight|golden hour"
    r"|time of day|season|winter|summer|autumn|spring|colou?r grad(?:e|ing)|white balance"
    r"|exposure|brighter|darker|warmer|cooler|mood|style|sepia|black and white|monochrome"
    r"|vintage|filter|tone)\b",
    re.IGNORECASE,
)


def keeps_the_rest(prompt: str) -> bool:
    """True when the prompt asks to leave everything but the edit alone."""
    return KEEP_THE_REST.search(prompt) is not None


def asks_to_reframe(prompt: str) -> bool:
    """True when the prompt asks for a change of camera or framing."""
    return REFRAME.search(prompt) is not None


def asks_for_a_new_look(prompt: str) -> bool:
    """True when the prompt asks for a global change of lighting, colour grade or style."""
    return GLOBAL_LOOK.search(prompt) is not None
