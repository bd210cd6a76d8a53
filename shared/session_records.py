"""What the store keeps for a session and a batch as a whole: `session.json` and `batch.json`."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from shared.models import Strict, Tier, Transport
from shared.session_spec import HistoryPolicy


class SessionRecord(Strict):
    """`session.json`: the session's fixed settings."""

    session_id: str
    model: str
    aspect_ratio: str | None = None
    image_size: str | None = None
    history: HistoryPolicy = Field(default_factory=HistoryPolicy)
    metadata: dict[str, str] = Field(default_factory=dict)
    budget_usd: float | None = None
    batch_id: str | None = None
    forked_from: str | None = None
    tenant: str | None = None  # owner when submitted through the HTTP API
    webhook_url: str | None = None  # where session events are POSTed (signed)
    tier: Tier = Tier.STANDARD
    transport: Transport = Transport.REPLAY
    created_at: datetime


class BatchRecord(Strict):
    """`batches/{batch_id}/batch.json`: the sessions submitted together and their shared budget.

    Rewritten only to raise or lower the budget (`editqueue budget BATCH --usd Y`).
    """

    batch_id: str
    session_ids: list[str]
    budget_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    created_at: datetime
