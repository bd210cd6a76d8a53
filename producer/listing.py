"""Pages of sessions for a caller: in id order, one tenant's only, optionally in one state."""

from __future__ import annotations

from dataclasses import dataclass

from producer import api
from shared.models import SessionState, SessionStatus
from shared.runtime import Services


@dataclass(frozen=True)
class Page:
    """Up to `limit` sessions, and the id to continue after (None on the last page)."""

    statuses: list[SessionStatus]
    next_after: str | None


def session_page(
    services: Services,
    *,
    owner: str | None,
    state: SessionState | None = None,
    after: str | None = None,
    limit: int = 50,
) -> Page:
    """Sessions with ids after `after`; `owner` None means every tenant's (the open API)."""
    found: list[SessionStatus] = []
    for sid in services.repo.session_ids():
        if after is not None and sid <= after:
            continue
        if owner is not None and services.repo.session(sid).tenant != owner:
            continue
        status = api.session_status(services, sid)
        if state is not None and status.state is not state:
            continue
        if len(found) == limit:
            return Page(found, found[-1].session_id)
        found.append(status)
    return Page(found, None)
