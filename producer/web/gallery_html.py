"""The gallery page: the evolution strip of a session, server-rendered, refreshed by a little JS.

Each turn shows its image, prompt, state, latency, cost and the quality verdicts against the turn
before (preservation, precision, drift, quality, with their numbers). While the session is queued
or running the script polls the status JSON and, when a turn changed, swaps in the freshly
rendered strip. Every image gets `data-loaded="1"` once it has loaded (tests and people can see
which did not).
"""

from __future__ import annotations

from html import escape

from producer import quality_view
from producer.web.schemas import SessionView, TurnView
from shared.models import SessionState
from shared.verdicts import AXES

POLL_MS = 2000
NONE = "\u2013"
ACTIVE = (SessionState.QUEUED, SessionState.RUNNING)

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5rem; color: #222; background: #fafafa; }
h1 { font-size: 1.3rem; margin: 0 0 .2rem; } .muted { color: #666; }
.strip { display: flex; gap: 1rem; overflow-x: auto; padding: 1rem 0; align-items: flex-start; }
.turn { flex: 0 0 300px; margin: 0; background: #fff; border: 1px solid #ddd; border-radius: 6px;
  padding: .6rem; }
.turn img, .turn .placeholder { width: 100%; height: auto; background: #eee; display: block;
  border-radius: 3px; }
.turn .placeholder { aspect-ratio: 16 / 9; }
.placeholder { display: flex; align-items: center; justify-content: center; color: #777; }
.prompt { white-space: pre-wrap; margin: .4rem 0; }
dl { display: grid; grid-template-columns: auto 1fr; gap: 0 .6rem; margin: 0; font-size: 13px; }
dt { color: #777; } dd { margin: 0; } figcaption { margin-top: .4rem; }
.state-succeeded, .state-completed { color: #2a7d2a; } .state-failed { color: #b22; }
.state-running, .state-queued { color: #a66b00; }
.badge { border-radius: 3px; padding: 0 .35rem; font-size: 12px; }
.drift { background: #fbe3b8; color: #7a4a00; }
.nums { font-size: 12px; }
"""
STYLE += quality_view.STYLE

SCRIPT = """
(function () {
  var root = document.getElementById("gallery");
  function mark(scope) {
    scope.querySelectorAll("img[data-turn]").forEach(function (img) {
      function ok() { img.dataset.loaded = "1"; }
      function bad() { img.dataset.loaded = "error"; }
      if (img.complete && img.naturalWidth > 0) { ok(); return; }
      img.addEventListener("load", ok);
      img.addEventListener("error", bad);
    });
  }
  function signature(doc) {
    return doc.state + ":" + doc.turns.map(function (t) { return t.index + t.state; }).join(",");
  }
  function poll() {
    if (["queued", "running"].indexOf(root.dataset.state) < 0) { return; }
    fetch(root.dataset.statusUrl, {cache: "no-store"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (doc) {
        if (!doc || signature(doc) === root.dataset.signature) { return null; }
        return fetch(location.href, {cache: "no-store"}).then(function (r) { return r.text(); })
          .then(function (html) {
            var fresh = new DOMParser().parseFromString(html, "text/html")
              .getElementById("gallery");
            root.innerHTML = fresh.innerHTML;
            root.dataset.state = fresh.dataset.state;
            root.dataset.signature = fresh.dataset.signature;
            mark(root);
          });
      })
      .catch(function () {})
      .then(function () { setTimeout(poll, %(poll)d); });
  }
  mark(document);
  setTimeout(poll, %(poll)d);
})();
"""


def signature(view: SessionView) -> str:
    """What the script compares to notice a change: `state:1succeeded,2running`."""
    turns = ",".join(f"{t.index}{t.state.value}" for t in view.turns)
    return f"{view.state.value}:{turns}"


def _quality(turn: TurnView) -> str:
    """A `<dt>/<dd>` pair per quality axis (nothing for turn 1)."""
    if turn.quality is None:
        return ""
    return "".join(
        f"<dt>{name}</dt><dd>{quality_view.cell(name, getattr(turn.quality, name))}</dd>"
        for name in AXES
    )


def _picture(turn: TurnView) -> str:
    if turn.image_url is None:
        return f'<div class="placeholder">{escape(turn.state.value)}</div>'
    alt = f"turn {turn.index}"
    return (
        f'<img src="{escape(turn.image_url)}" alt="{escape(alt)}" data-turn="{turn.index}" '
        f'width="{turn.image.width if turn.image else 0}" '
        f'height="{turn.image.height if turn.image else 0}">'
    )


def _turn(turn: TurnView) -> str:
    latency = f"{turn.latency_s:.1f} s" if turn.latency_s is not None else NONE
    state = turn.state.value
    error = f"<dt>error</dt><dd>{escape(turn.error.message)}</dd>" if turn.error else ""
    return (
        f'<figure class="turn" id="turn-{turn.index}" data-index="{turn.index}" '
        f'data-state="{state}">{_picture(turn)}<figcaption>'
        f"<strong>Turn {turn.index}</strong>"
        f'<p class="prompt">{escape(turn.prompt)}</p><dl>'
        f'<dt>state</dt><dd class="state-{state}">{state}</dd>'
        f"<dt>latency</dt><dd>{latency}</dd>"
        f"<dt>cost</dt><dd>${turn.cost_usd:.4f}</dd>"
        f"{_quality(turn)}{error}</dl></figcaption></figure>"
    )


def gallery_inner(view: SessionView) -> str:
    """The part the script swaps in: header and strip."""
    state = view.state.value
    live = " · refreshing while it runs" if view.state in ACTIVE else ""
    return (
        f"<h1>Session {escape(view.session_id)}</h1>"
        f'<p class="muted">{escape(view.model)} · <span class="state-{state}">{state}</span> · '
        f"{len(view.turns)} turns · ${view.cost_usd:.4f}{live}</p>"
        f'<div class="strip">{"".join(_turn(t) for t in view.turns)}</div>'
    )


def render_page(view: SessionView, status_url: str, nonce: str) -> str:
    """The whole page; `status_url` is the JSON the script polls."""
    script = SCRIPT % {"poll": POLL_MS}
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>editqueue · {escape(view.session_id)}</title>"
        f'<style nonce="{nonce}">{STYLE}</style></head><body>'
        f'<main id="gallery" data-state="{view.state.value}" '
        f'data-signature="{escape(signature(view))}" data-status-url="{escape(status_url)}">'
        f"{gallery_inner(view)}</main>"
        f'<script nonce="{nonce}">{script}</script></body></html>\n'
    )
