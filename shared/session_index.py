"""The store's index of sessions: which are open, and a summary row of each.

    {prefix}index/open/{sid}              empty marker: the session may still have work to do
    {prefix}index/summaries/{sid}.json    state, tenant, model, turns, cost, updated_at

A marker is written at submit (before `session.json`) and again by every command that gives a
session more work (append, retry); the sweep removes it once the store says the session ended
(completed, failed or cancelled), after writing the final summary. So the periodic sweep reads
open sessions only, and a listing reads one small summary per finished session. A summary whose
session still has a marker is stale by design: listings compute open sessions' rows live.
`editqueue reconcile --full` rebuilds both from a scan of every session.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from pydantic import BaseModel

from shared.errors import ObjectNotFound
from shared.keys import INDEX_OPEN, INDEX_SUMMARIES, open_key, summary_id_of, summary_key
from shared.models import SessionState, Tier, TurnState
from shared.status_document import SessionStatus
from shared.storage import ObjectStore

FINAL_STATES = frozenset({SessionState.COMPLETED, SessionState.FAILED, SessionState.CANCELLED})


class StoredSummary(BaseModel):
    """One session's row in a listing."""

    session_id: str
    state: SessionState
    tenant: str | None = None
    model: str
    tier: Tier = Tier.STANDARD
    turns: int
    turns_succeeded: int
    cost_usd: float
    updated_at: datetime


def summary_of(status: SessionStatus, tenant: str | None) -> StoredSummary:
    """The summary row of a status document."""
    done = sum(1 for t in status.turns if t.state is TurnState.SUCCEEDED)
    return StoredSummary(
        session_id=status.session_id,
        state=status.state,
        tenant=tenant,
        model=status.model,
        tier=status.tier,
        turns=len(status.turns),
        turns_succeeded=done,
        cost_usd=status.cost_usd,
        updated_at=datetime.now(UTC),
    )


class SessionIndex:
    """Reads and writes the open markers and summaries of one store."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def mark_open(self, sid: str) -> None:
        """The session has (or may get) work: the sweep reads it from now on."""
        self.store.put(open_key(sid), b"")

    def unmark(self, sid: str) -> None:
        """Forget the marker (submit's clean-up after a failed write)."""
        self.store.delete(open_key(sid))

    def write_summary(self, summary: StoredSummary) -> None:
        """Store (or replace) a session's summary row."""
        self.store.put(summary_key(summary.session_id), summary.model_dump_json().encode())

    def close(self, summary: StoredSummary) -> None:
        """The session ended: its final summary first, then the marker goes."""
        self.write_summary(summary)
        self.store.delete(open_key(summary.session_id))

    def open_ids(self) -> list[str]:
        """Every session with an open marker, in id order (one LIST per 1,000)."""
        return [key[len(INDEX_OPEN) :] for key in self.store.list(INDEX_OPEN)]

    def summary_ids(self, after: str | None = None) -> Iterator[str]:
        """Ids of every summarised session after `after`, in id order."""
        for key in self.store.list(INDEX_SUMMARIES):
            sid = summary_id_of(key)
            if sid is not None and (after is None or sid > after):
                yield sid

    def summary(self, sid: str) -> StoredSummary | None:
        """A session's stored summary (None when it has none)."""
        try:
            data = self.store.get(summary_key(sid))
        except ObjectNotFound:
            return None
        return StoredSummary.model_validate_json(data)
