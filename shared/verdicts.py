"""The source article's quality table for a transition: preservation, precision, drift, quality.

Pure: the stored numbers of turn n (worker/quality.py) and the thresholds in, one verdict per axis
out. Every check has two limits: within the first the axis is `strong`, within the second `good`,
beyond it `weak`; an axis takes the worst of its checks. An axis the prompt excuses (a reframe
asked for, a new look asked for) or that has nothing to measure has no verdict (None).
Verdicts are computed when the status is read, so changing a threshold re-judges stored sessions.

The colour a prompt names (precision's target) is read here too: `#RRGGBB` or a small table of
names. A hex code in the prompt wins over a name; of several names the longest ("sage green"
before "green") and then the first wins. A name counts only when the prompt is about colour
(paint, colour, tint ...): "a lamp with an orange glow" asks for no colour match. Its distance to
the pixels is measured by the worker (worker/colours.py: ΔE2000).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

Verdict = Literal["strong", "good", "weak"]
RANK: dict[Verdict, int] = {"strong": 0, "good": 1, "weak": 2}
AXES = ("preservation", "precision", "drift", "quality")


class QualityThresholds(BaseModel):
    """Limits of `strong` and `good` per check (env: EDITQUEUE_QUALITY__<NAME>)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    drift_scale_strong: float = 0.01  # |scale - 1|
    drift_scale_good: float = 0.03
    drift_shift_strong: float = 0.01  # fraction of the frame
    drift_shift_good: float = 0.03
    drift_rotation_strong_deg: float = 0.5
    drift_rotation_good_deg: float = 1.5
    drift_aspect_strong: float = 0.01  # |stretch - 1|
    drift_aspect_good: float = 0.03
    changed_outside_strong: float = 0.01  # share of the pixels outside the edit region
    changed_outside_good: float = 0.03
    ssim_outside_strong: float = 0.95  # higher is better
    ssim_outside_good: float = 0.85
    cast_mean_de_strong: float = 2.0  # mean ΔE2000 outside the region
    cast_mean_de_good: float = 4.0
    cast_p95_de_strong: float = 6.0
    cast_p95_de_good: float = 10.0
    colour_de_strong: float = 3.0  # ΔE2000, named colour vs the changed pixels
    colour_de_good: float = 6.0
    sharpness_ratio_strong: float = 0.85  # higher is better
    sharpness_ratio_good: float = 0.7
    noise_ratio_strong: float = 1.25
    noise_ratio_good: float = 1.6


class Axis(BaseModel):
    """One cell of the table: a verdict (None = not judged), why, and the numbers behind it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    verdict: Verdict | None = None
    note: str = ""
    numbers: dict[str, float] = {}


class QualityRow(BaseModel):
    """The four cells of one transition."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    preservation: Axis
    precision: Axis
    drift: Axis
    quality: Axis

    def weak_axes(self) -> list[str]:
        """The axes whose verdict is `weak` (the ones a reviewer should look at)."""
        return [name for name in AXES if getattr(self, name).verdict == "weak"]


Check = tuple[str, float, float, float, bool]  # label, value, strong, good, higher_is_better
# (label, metric, threshold name, higher is better)
KEPT_CHECKS = (
    ("changed outside", "changed_outside", "changed_outside", False),
    ("SSIM outside", "ssim_outside", "ssim_outside", True),
)
CAST_CHECKS = (
    ("colour cast", "de_mean_outside", "cast_mean_de", False),
    ("colour cast p95", "de_p95_outside", "cast_p95_de", False),
)
DETAIL_CHECKS = (
    ("detail", "sharpness_ratio", "sharpness_ratio", True),
    ("noise", "noise_ratio", "noise_ratio", False),
)


def grade(value: float, strong: float, good: float, higher_is_better: bool = False) -> Verdict:
    """`strong` within the first limit, `good` within the second, else `weak`."""
    if higher_is_better:
        return "strong" if value >= strong else "good" if value >= good else "weak"
    return "strong" if value <= strong else "good" if value <= good else "weak"


def judge(checks: list[Check], numbers: dict[str, float]) -> Axis:
    """The worst verdict of the checks; the note names the checks that set it."""
    if not checks:
        return Axis(note="nothing to measure", numbers=numbers)
    graded = [(label, grade(v, s, g, hi)) for label, v, s, g, hi in checks]
    worst = max((v for _, v in graded), key=RANK.__getitem__)
    culprits = [label for label, v in graded if v == worst and worst != "strong"]
    return Axis(verdict=worst, note=", ".join(culprits), numbers=numbers)


def _pick(metrics: dict[str, float], *names: str) -> dict[str, float]:
    return {name: metrics[name] for name in names if name in metrics}


def drift(metrics: dict[str, float], t: QualityThresholds) -> Axis:
    """Framing: a camera change the prompt did not ask for."""
    numbers = _pick(metrics, "scale", "shift", "rotation_deg", "aspect", "inliers")
    if metrics.get("asks_reframe"):
        return Axis(note="the prompt asks to reframe", numbers=numbers)
    if not metrics.get("aligned"):
        if metrics.get("keeps_rest"):
            return Axis(verdict="weak", note="frames could not be aligned", numbers=numbers)
        return Axis(note="frames could not be aligned", numbers=numbers)
    checks: list[Check] = [
        ("scale", abs(metrics["scale"] - 1), t.drift_scale_strong, t.drift_scale_good, False),
        ("shift", metrics["shift"], t.drift_shift_strong, t.drift_shift_good, False),
        (
            "rotation",
            abs(metrics["rotation_deg"]),
            t.drift_rotation_strong_deg,
            t.drift_rotation_good_deg,
            False,
        ),
        ("aspect", abs(metrics["aspect"] - 1), t.drift_aspect_strong, t.drift_aspect_good, False),
    ]
    return judge(checks, numbers)


def preservation(metrics: dict[str, float], t: QualityThresholds) -> Axis:
    """What should stay: changed pixels, structure and colour outside the edit region."""
    numbers = _pick(
        metrics,
        "changed_outside",
        "ssim_outside",
        "de_mean_outside",
        "de_p95_outside",
        "changed_inside",
        "region_fraction",
        "region_from_mask",
    )
    checks = _checks(metrics, t, KEPT_CHECKS)
    if metrics.get("asks_new_look"):
        axis = judge(checks, numbers)
        excused = "a new look is asked for: the colour shift is not judged"
        return axis.model_copy(update={"note": "; ".join(filter(None, [axis.note, excused]))})
    checks += _checks(metrics, t, CAST_CHECKS)
    if not checks and metrics.get("keeps_rest"):
        return Axis(verdict="weak", note="the whole frame changed", numbers=numbers)
    return judge(checks, numbers)


def precision(metrics: dict[str, float], prompt_colour: str | None, t: QualityThresholds) -> Axis:
    """The edit itself: the colour the prompt names against the pixels that changed."""
    numbers = _pick(metrics, "colour_de", "changed_inside", "region_fraction")
    if prompt_colour is None:
        return Axis(note="no colour named", numbers=numbers)
    if "colour_de" not in metrics:
        return Axis(verdict="weak", note=f"{prompt_colour}: nothing changed", numbers=numbers)
    axis = judge([("colour", metrics["colour_de"], *_limits(t, "colour_de"), False)], numbers)
    return axis.model_copy(update={"note": f"{prompt_colour}: ΔE {metrics['colour_de']:.1f}"})


def quality(metrics: dict[str, float], trends: dict[str, float], t: QualityThresholds) -> Axis:
    """Degradation: detail and noise against turn n-1 where the edit left the picture alone.

    `trends` holds the products of turns 2..n's ratios (`detail_since_first`,
    `noise_since_first`): what changed since turn 1, each factor over pixels its edit left alone.
    """
    numbers = _pick(metrics, "sharpness_ratio", "noise_ratio", "sharpness", "noise")
    numbers |= {name: round(value, 4) for name, value in trends.items()}
    checks = _checks(metrics, t, DETAIL_CHECKS)
    return judge(checks, numbers)


def _checks(
    metrics: dict[str, float], t: QualityThresholds, table: tuple[tuple[str, str, str, bool], ...]
) -> list[Check]:
    return [
        (label, metrics[key], *_limits(t, limits), higher)
        for label, key, limits, higher in table
        if key in metrics
    ]


def _limits(t: QualityThresholds, name: str) -> tuple[float, float]:
    suffix = "_deg" if name.startswith("drift_rotation") else ""
    return getattr(t, f"{name}_strong{suffix}"), getattr(t, f"{name}_good{suffix}")


def assess(
    metrics: dict[str, float],
    prompt_colour: str | None,
    trends: dict[str, float],
    thresholds: QualityThresholds,
) -> QualityRow | None:
    """The table row of a transition, or None when turn n has no transition numbers (turn 1, a
    failed measurement, or a turn committed before the table existed)."""
    if "aligned" not in metrics:
        return None
    return QualityRow(
        preservation=preservation(metrics, thresholds),
        precision=precision(metrics, prompt_colour, thresholds),
        drift=drift(metrics, thresholds),
        quality=quality(metrics, trends, thresholds),
    )


# The colour a prompt names: precision's target (measured by worker/quality.py).
Rgb = tuple[int, int, int]

HEX_RE = re.compile(r"#([0-9a-fA-F]{6})\b")
# Common interior and paint names with a typical sRGB value (CSS values where CSS has the name).
NAMED_COLOURS: dict[str, str] = {
    "white": "#FFFFFF",
    "off-white": "#F5F3EE",
    "black": "#000000",
    "charcoal": "#36454F",
    "grey": "#808080",
    "gray": "#808080",
    "red": "#FF0000",
    "burgundy": "#800020",
    "terracotta": "#E2725B",
    "orange": "#FFA500",
    "yellow": "#FFFF00",
    "mustard": "#E1AD01",
    "cream": "#FFFDD0",
    "beige": "#F5F5DC",
    "ivory": "#FFFFF0",
    "brown": "#8B4513",
    "olive": "#808000",
    "green": "#008000",
    "sage": "#9CAF88",
    "sage green": "#9CAF88",
    "teal": "#008080",
    "blue": "#0000FF",
    "navy": "#000080",
    "navy blue": "#000080",
    "sky blue": "#87CEEB",
    "lavender": "#E6E6FA",
    "purple": "#800080",
    "pink": "#FFC0CB",
}
COLOUR_WORDS_RE = re.compile(r"\b(?:re)?(?:paint|colou?r|tint|dye|stain)(?:ed|s|ing)?\b", re.I)
_NAMES_RE = re.compile(
    r"\b(" + "|".join(re.escape(n) for n in sorted(NAMED_COLOURS, key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)


def parse_hex(text: str) -> Rgb:
    """`#8FAF8A` -> (143, 175, 138)."""
    digits = text.lstrip("#")
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def named_colour(prompt: str) -> tuple[str, Rgb] | None:
    """The colour a prompt asks for, as (how it was written, sRGB), or None."""
    match = HEX_RE.search(prompt)
    if match is not None:
        return match.group(0), parse_hex(match.group(1))
    found = _NAMES_RE.search(prompt) if COLOUR_WORDS_RE.search(prompt) else None
    if found is None:
        return None
    return found.group(1), parse_hex(NAMED_COLOURS[found.group(1).lower()])
