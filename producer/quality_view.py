"""The quality table as people read it: a verdict badge and the numbers behind it, per axis.

Shared by `report.html` and the gallery; HTML-escaped here, so callers insert the result as is.
"""

from __future__ import annotations

from html import escape

from shared.verdicts import AXES, Axis, QualityRow

NONE = "\u2013"
TIMES = "\u00d7"
STYLE = """
.verdict { display: inline-block; padding: 0 .45rem; border-radius: .6rem; font-size: .8rem; }
.verdict-strong { background: #d8f0d8; color: #1f5f1f; }
.verdict-good { background: #e6eef8; color: #24487a; }
.verdict-weak { background: #fbe3b8; color: #7a4a00; font-weight: 600; }
.verdict-none { background: #eee; color: #666; }
.qtable td { font-size: 13px; } .qtable .nums { color: #555; }
"""
TITLES = {
    "preservation": "what should stay, stayed (outside the edit region)",
    "precision": "the edit itself: the named colour against the pixels that changed",
    "drift": "framing: camera change the prompt did not ask for",
    "quality": "degradation: detail and noise against the previous turn",
}


# Per axis: (metric, how to show it), in the order shown; a metric the turn lacks is left out.
FORMATS: dict[str, tuple[tuple[str, str], ...]] = {
    "preservation": (
        ("changed_outside", "changed outside {:.1%}"),
        ("ssim_outside", "SSIM outside {:.3f}"),
        ("de_mean_outside", "ΔE outside {:.1f}"),
        ("de_p95_outside", "p95 {:.1f}"),
        ("region_fraction", "edit region {:.1%}"),
    ),
    "precision": (("changed_inside", "changed in region {:.1%}"),),
    "drift": (
        ("scale", "scale {:.3f}"),
        ("shift", "shift {:.1%}"),
        ("rotation_deg", "rotation {:.1f}°"),
        ("aspect", "aspect {:.3f}"),
    ),
    "quality": (
        ("sharpness_ratio", f"detail {TIMES}{{:.2f}}"),
        ("noise_ratio", f"noise {TIMES}{{:.2f}} vs previous"),
        ("detail_since_first", f"detail {TIMES}{{:.2f}}"),
        ("noise_since_first", f"noise {TIMES}{{:.2f}} since turn 1"),
    ),
}


def numbers_text(name: str, numbers: dict[str, float]) -> str:
    """`scale 1.080 · shift 2.0% · ...`: an axis's numbers as people read them."""
    parts = [form.format(numbers[key]) for key, form in FORMATS[name] if key in numbers]
    if name == "preservation" and "region_fraction" in numbers:
        parts[-1] += " (mask)" if numbers.get("region_from_mask") else " (estimated)"
    return " · ".join(parts)


def badge(axis: Axis) -> str:
    """The verdict as a coloured badge (`n/a` when the axis was not judged)."""
    word = axis.verdict or "n/a"
    css = axis.verdict or "none"
    title = f' title="{escape(axis.note)}"' if axis.note else ""
    return f'<span class="verdict verdict-{css}"{title}>{escape(word)}</span>'


def cell(name: str, axis: Axis) -> str:
    """Badge, the note, and the numbers of one axis."""
    note = f" {escape(axis.note)}" if axis.note else ""
    numbers = numbers_text(name, axis.numbers)
    detail = f'<br><span class="nums">{escape(numbers)}</span>' if numbers else ""
    return f"{badge(axis)}{note}{detail}"


def header() -> str:
    """The four column headings."""
    return "".join(f'<th title="{escape(TITLES[a])}">{a}</th>' for a in AXES)


def row_cells(row: QualityRow | None) -> str:
    """The four `<td>`s of a transition (dashes for turn 1 or a turn without numbers)."""
    if row is None:
        return "".join(f"<td>{NONE}</td>" for _ in AXES)
    return "".join(f"<td>{cell(a, getattr(row, a))}</td>" for a in AXES)


def flagged(row: QualityRow | None) -> str:
    """`drift, quality`: the weak axes of a transition, or empty."""
    return ", ".join(row.weak_axes()) if row is not None else ""
