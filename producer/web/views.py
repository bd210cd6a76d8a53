"""Answers built from the status document: the session view (with image URLs) and summaries."""

from __future__ import annotations

from collections.abc import Callable

from producer.web.schemas import SessionLinks, SessionSummary, SessionView, TurnView
from shared.session_index import StoredSummary
from shared.session_records import SessionRecord
from shared.status_document import SessionStatus


def session_view(
    status: SessionStatus,
    record: SessionRecord,
    links: SessionLinks,
    image_url: Callable[[int], str],
    shown_id: str | None = None,
) -> SessionView:
    """The status document with each committed turn's image URL and the session's links.

    `shown_id` is the id the caller knows the session by (a tenant's own, without `tenant.`).
    """
    turns = [
        TurnView(
            **turn.model_dump(),
            image_url=image_url(turn.index) if turn.image is not None else None,
        )
        for turn in status.turns
    ]
    return SessionView(
        session_id=shown_id or status.session_id,
        state=status.state,
        model=status.model,
        tier=status.tier,
        transport=status.transport,
        cost_usd=status.cost_usd,
        created_at=record.created_at,
        forked_from=record.forked_from,
        webhook_url=record.webhook_url,
        metadata=record.metadata,
        turns=turns,
        urls=links,
    )


def summary(row: StoredSummary, status_url: str, shown_id: str) -> SessionSummary:
    """One row of a listing."""
    return SessionSummary(
        session_id=shown_id,
        state=row.state,
        model=row.model,
        cost_usd=row.cost_usd,
        turns=row.turns,
        turns_succeeded=row.turns_succeeded,
        status_url=status_url,
    )
