"""Listing sessions from the store's index: finished sessions by their stored summary (one small
GET each), open ones computed live (their number is what is unfinished, not what is stored).

Pages are in id order, one tenant's only, optionally in one state.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from shared.errors import UnknownSession
from shared.models import SessionState
from shared.services import Services
from shared.session_index import SessionIndex, StoredSummary, summary_of
from shared.status import build_status


@dataclass(frozen=True)
class Page:
    """Up to `limit` sessions, and the id to continue after (None on the last page)."""

    rows: list[StoredSummary]
    next_after: str | None


def live_summary(services: Services, sid: str) -> StoredSummary | None:
    """An open session's row from its current status (None if it is not written yet)."""
    try:
        snap = services.repo.snapshot(sid)
    except UnknownSession:
        return None  # a submit in progress writes the marker before session.json
    status = build_status(snap, services.coord.live(sid), services.settings.quality)
    return summary_of(status, snap.record.tenant)


def _unique(ids: Iterable[str]) -> Iterator[str]:
    last = None
    for sid in ids:
        if sid != last:
            yield sid
        last = sid


def summaries(services: Services, after: str | None = None) -> Iterator[StoredSummary]:
    """Every indexed session after `after`, in id order."""
    index = SessionIndex(services.repo.store)
    opened = [sid for sid in index.open_ids() if after is None or sid > after]
    open_set = set(opened)
    for sid in _unique(heapq.merge(opened, index.summary_ids(after))):
        row = live_summary(services, sid) if sid in open_set else index.summary(sid)
        if row is not None:
            yield row


def open_session_ids(services: Services) -> list[str]:
    """Sessions that may still have work, in id order."""
    return SessionIndex(services.repo.store).open_ids()


def session_page(
    services: Services,
    *,
    owner: str | None,
    state: SessionState | None = None,
    after: str | None = None,
    limit: int = 50,
) -> Page:
    """Sessions with ids after `after`; `owner` None means every tenant's (the open API)."""
    found: list[StoredSummary] = []
    for row in summaries(services, after):
        if owner is not None and row.tenant != owner:
            continue
        if state is not None and row.state is not state:
            continue
        if len(found) == limit:
            return Page(found, found[-1].session_id)
        found.append(row)
    return Page(found, None)
