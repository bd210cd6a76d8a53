"""`report.html`: one self-contained page per session (inline CSS, relative image links)."""

from __future__ import annotations

from html import escape
from typing import Any

from producer import quality_view
from shared.sessions import SessionSnapshot
from shared.status_document import SessionStatus, TurnStatus
from shared.verdicts import AXES

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.4rem; margin-bottom: .2rem; } .muted { color: #666; }
.strip img { max-width: 100%; border: 1px solid #ddd; }
table { border-collapse: collapse; margin: .6rem 0; } td, th { padding: .2rem .8rem .2rem 0;
  text-align: left; vertical-align: top; } th { color: #666; font-weight: normal; }
.turn { display: grid; grid-template-columns: 360px 1fr; gap: 1.2rem; margin: 1.6rem 0;
  padding-top: 1.2rem; border-top: 1px solid #eee; } .turn img { width: 360px; }
.state-succeeded { color: #2a7d2a; } .state-failed { color: #b22; }
.prompt { white-space: pre-wrap; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: .6rem; font-size: .8rem; }
.drift { background: #fbe3b8; color: #7a4a00; }
.qtable th, .qtable td { border-bottom: 1px solid #eee; padding: .35rem .8rem .35rem 0; }
"""
STYLE += quality_view.STYLE
NONE = "\u2013"  # an en dash for empty cells
TIMES = "\u00d7"
TOKEN_FIELDS = (
    ("prompt", "promptTokenCount"),
    ("output", "candidatesTokenCount"),
    ("thoughts", "thoughtsTokenCount"),
    ("total", "totalTokenCount"),
)


def _tokens(usage: dict[str, Any]) -> str:
    shown = [
        f"{label} {usage[key]:,}" for label, key in TOKEN_FIELDS if isinstance(usage.get(key), int)
    ]
    return " · ".join(shown) or NONE


def _row(label: str, value: str) -> str:
    return f"<tr><th>{escape(label)}</th><td>{value}</td></tr>"


def _error(turn: TurnStatus) -> str:
    if turn.error is None:
        return NONE
    status = f" (HTTP {turn.error.status})" if turn.error.status else ""
    return escape(f"{turn.error.kind}{status}: {turn.error.message}")


def quality(turn: TurnStatus) -> str:
    """`SSIM 0.931 · changed 12.0 %` and the four verdict badges, from the turn's quality row."""
    metrics = turn.metrics
    if "ssim" not in metrics or turn.quality is None:
        return NONE
    text = f"SSIM {metrics['ssim']:.3f} · changed {metrics.get('changed_fraction', 0.0):.1%}"
    badges = " ".join(f"{name} {quality_view.badge(getattr(turn.quality, name))}" for name in AXES)
    return f"{escape(text)}<br>{badges}"


def quality_table(status: SessionStatus) -> str:
    """The source article's table: one row per transition, four verdicts with their numbers."""
    rows = [
        f"<tr><th>{t.index - 1} → {t.index}</th>{quality_view.row_cells(t.quality)}</tr>"
        for t in status.turns
        if t.index > 1
    ]
    if not rows:
        return ""
    return (
        '<h2>Quality per transition</h2><table class="qtable"><tr><th>turns</th>'
        f"{quality_view.header()}</tr>{''.join(rows)}</table>"
    )


def _turn(turn: TurnStatus, name: str | None) -> str:
    image = (
        f'<a href="{escape(name)}"><img src="{escape(name)}" alt="turn {turn.index}"></a>'
        if name
        else '<div class="muted">no image</div>'
    )
    size = (
        f"{turn.image.width}{TIMES}{turn.image.height}, {turn.image.bytes:,} bytes"
        if turn.image
        else NONE
    )
    latency = f"{turn.latency_s:.1f} s" if turn.latency_s is not None else NONE
    sent = (
        f"{turn.upload_bytes:,} bytes ({turn.transport or 'replay'})"
        if turn.upload_bytes is not None
        else NONE
    )
    rows = [
        _row("state", f'<span class="state-{turn.state.value}">{turn.state.value}</span>'),
        _row("prompt", f'<span class="prompt">{escape(turn.prompt)}</span>'),
        _row("image", escape(size)),
        _row("attempts", str(turn.attempts)),
        _row("latency", latency),
        _row("uploaded", escape(sent)),
        _row("tokens", escape(_tokens(turn.usage))),
        _row("vs previous", quality(turn)),
        _row("cost", f"${turn.cost_usd:.4f}"),
        _row("finish reason", escape(turn.finish_reason or NONE)),
        _row("error", _error(turn)),
    ]
    return (
        f'<section class="turn"><div>{image}</div><div><h2>Turn {turn.index}</h2>'
        f"<table>{''.join(rows)}</table></div></section>"
    )


def _totals(status: SessionStatus) -> str:
    done = sum(1 for t in status.turns if t.image is not None)
    latency = sum(t.latency_s or 0.0 for t in status.turns)
    tokens = sum(int(t.usage.get("totalTokenCount", 0) or 0) for t in status.turns)
    sent = sum(t.upload_bytes or 0 for t in status.turns)
    flagged = [
        f"turn {t.index}: {quality_view.flagged(t.quality)}"
        for t in status.turns
        if quality_view.flagged(t.quality)
    ]
    look = f'<span class="badge drift">{escape("; ".join(flagged))}</span>' if flagged else NONE
    rows = [
        _row("state", f'<span class="state-{status.state.value}">{status.state.value}</span>'),
        _row("turns", f"{done} of {len(status.turns)} with an image"),
        _row("cost", f"${status.cost_usd:.4f}"),
        _row("API time", f"{latency:.1f} s"),
        _row("uploaded", f"{sent:,} bytes ({escape(status.transport.value)})"),
        _row("tokens", f"{tokens:,}"),
        _row("needs a look", look),
    ]
    return f"<table>{''.join(rows)}</table>"


def render_html(
    status: SessionStatus, snap: SessionSnapshot, names: dict[int, str], *, has_strip: bool
) -> str:
    """The whole page: header, totals, the strip, then every turn."""
    record = snap.record
    lineage = f" · forked from {escape(record.forked_from)}" if record.forked_from else ""
    strip = '<p class="strip"><img src="strip.jpg" alt="evolution strip"></p>' if has_strip else ""
    turns = "".join(_turn(t, names.get(t.index)) for t in status.turns)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>editqueue · {escape(status.session_id)}</title><style>{STYLE}</style></head>"
        f"<body><h1>Session {escape(status.session_id)}</h1>"
        f'<p class="muted">{escape(status.model)} · created {record.created_at:%Y-%m-%d %H:%M} UTC'
        f'{lineage} · <a href="status.json">status.json</a></p>'
        f"{_totals(status)}{strip}{quality_table(status)}{turns}</body></html>\n"
    )
