"""What the CLI prints for people: a session's turns and a table of sessions (plain text).

Prompts, error messages and model ids are tenants' text: control and format characters (escape
sequences, OSC, BEL, NUL, bidi overrides) are printed escaped, never sent raw to a terminal.
"""

from __future__ import annotations

import unicodedata

from producer.progress import turns_finished
from producer.report import TIMES, short_prompt
from shared.session_index import StoredSummary
from shared.status_document import SessionStatus, TurnStatus

PROMPT_CHARS = 60


def printable(text: str) -> str:
    """`text` with control and format characters shown as escapes (`\\x1b`, `\\u202e`)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    if unicodedata.category(ch)[0] not in "CZ":  # e.g. a combining mark: harmless
        return ch
    return ch.encode("unicode_escape").decode("ascii")


def _money(value: float) -> str:
    return f"${value:.3f}"


def turn_line(turn: TurnStatus) -> str:
    """One turn: index, state, pixel size, latency, cost, the start of the prompt, any error."""
    size = f"{turn.image.width}{TIMES}{turn.image.height}" if turn.image else "-"
    latency = f"{turn.latency_s:.1f}s" if turn.latency_s is not None else "-"
    prompt = printable(short_prompt(turn.prompt, PROMPT_CHARS))
    line = (
        f"{turn.index:>3}  {turn.state.value:<9}  {size:>9}  {latency:>6}  "
        f"{_money(turn.cost_usd)}  {prompt}"
    )
    if turn.upload_bytes is not None:
        line += f"\n     sent {turn.upload_bytes:,} bytes ({turn.transport or 'replay'})"
    if turn.error is not None:
        status = f" {turn.error.status}" if turn.error.status else ""
        line += f"\n     {turn.error.kind}{status}: {printable(turn.error.message)}"
    elif turn.waiting_reason:
        line += f"\n     waiting: {printable(turn.waiting_reason)}"
    if turn.quality is not None and turn.quality.weak_axes():
        line += f"\n     needs a look: {', '.join(turn.quality.weak_axes())} (weak)"
    return line


def session_view(status: SessionStatus) -> str:
    """A session's header line, then one line per turn."""
    done = turns_finished(status)
    header = (
        f"session {status.session_id}  {status.state.value}  {done}/{len(status.turns)} turns  "
        f"{_money(status.cost_usd)}  {printable(status.model)}  tier {status.tier.value}  "
        f"transport {status.transport.value}"
    )
    return "\n".join([header, *(turn_line(t) for t in status.turns)])


def sessions_table(rows: list[StoredSummary]) -> str:
    """One row per session: id, state, turns succeeded of requested, cost, model."""
    if not rows:
        return "no sessions"
    width = max(len("SESSION"), *(len(r.session_id) for r in rows))
    lines = [f"{'SESSION':<{width}}  {'STATE':<9}  {'TURNS':>5}  {'COST':>8}  MODEL"]
    for r in rows:
        turns = f"{r.turns_succeeded}/{r.turns}"
        lines.append(
            f"{r.session_id:<{width}}  {r.state.value:<9}  {turns:>5}  "
            f"{_money(r.cost_usd):>8}  {printable(r.model)}"
        )
    return "\n".join(lines)
