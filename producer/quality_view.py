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


def _pct(value: float) -> str:
    return f"{value:.1%}"


def _preservation(n: dict[str, float]) -> list[str]:
    parts = []
    if "changed_outside" in n:
        parts.append(f"changed outside {_pct(n['changed_outside'])}")
    if "ssim_outside" in n:
        parts.append(f"SSIM outside {n['ssim_outside']:.3f}")
    if "de_mean_outside" in n:
        parts.append(
            f"ΔE outside {n['de_mean_outside']:.1f} (p95 {n.get('de_p95_outside', 0):.1f})"
        )
    if "region_fraction" in n:
        source = "mask" if n.get("region_from_mask") else "estimated"
        parts.append(f"edit region {_pct(n['region_fraction'])} ({source})")
    return parts


def _precision(n: dict[str, float]) -> list[str]:
    return [f"changed in region {_pct(n['changed_inside'])}"] if "changed_inside" in n else []


def _drift(n: dict[str, float]) -> list[str]:
    if "scale" not in n:
        return []
    return [
        f"scale {n['scale']:.3f}",
        f"shift {_pct(n['shift'])}",
        f"rotation {n['rotation_deg']:.1f}°",
        f"aspect {n['aspect']:.3f}",
    ]


def _quality(n: dict[str, float]) -> list[str]:
    parts = []
    if "sharpness_ratio" in n:
        parts.append(f"detail {TIMES}{n['sharpness_ratio']:.2f}")
    if "noise_ratio" in n:
        parts.append(f"noise {TIMES}{n['noise_ratio']:.2f} vs previous")
    if "detail_since_first" in n:
        parts.append(f"detail {TIMES}{n['detail_since_first']:.2f} since turn 1")
    return parts


NUMBERS = {
    "preservation": _preservation,
    "precision": _precision,
    "drift": _drift,
    "quality": _quality,
}


def badge(axis: Axis) -> str:
    """The verdict as a coloured badge (`n/a` when the axis was not judged)."""
    word = axis.verdict or "n/a"
    css = axis.verdict or "none"
    title = f' title="{escape(axis.note)}"' if axis.note else ""
    return f'<span class="verdict verdict-{css}"{title}>{escape(word)}</span>'


def cell(name: str, axis: Axis) -> str:
    """Badge, the note, and the numbers of one axis."""
    note = f" {escape(axis.note)}" if axis.note else ""
    numbers = " · ".join(NUMBERS[name](axis.numbers))
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
