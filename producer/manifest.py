"""Batch manifests: the sessions submitted together (`batches/{id}/batch.json`) and their budget."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from ulid import ULID

from shared.errors import InvalidSpec
from shared.ids import validate_session_id
from shared.session_records import BatchRecord
from shared.sessions import SessionRepository

BATCH_ID_PREFIX = "b_"


def generate_batch_id() -> str:
    """A fresh, sortable batch id: `b_` and a ULID."""
    return f"{BATCH_ID_PREFIX}{ULID()}"


def checked_batch_id(batch_id: str) -> str:
    """A batch id that is safe as part of a key (the session id alphabet); InvalidSpec if not."""
    try:
        return validate_session_id(batch_id)
    except ValueError as exc:
        raise InvalidSpec(str(exc).replace("session id", "batch id", 1)) from None


def check_budget(budget_usd: float | None, option: str = "--budget-usd") -> None:
    """Refuse a negative or non-finite budget (a zero budget holds every turn back)."""
    if budget_usd is not None and not math.isfinite(budget_usd):
        raise InvalidSpec(f"{option} {budget_usd:g} is not an amount; give USD, e.g. 25")
    if budget_usd is not None and budget_usd < 0:
        raise InvalidSpec(f"{option} {budget_usd:g} is negative; give an amount in USD, e.g. 25")


def create_manifest(
    repo: SessionRepository,
    batch_id: str,
    sids: Sequence[str],
    budget_usd: float | None,
    now: datetime,
) -> BatchRecord:
    """Write a new batch's manifest (create-if-absent); InvalidSpec when the id is taken."""
    check_budget(budget_usd)
    record = BatchRecord(
        batch_id=checked_batch_id(batch_id),
        session_ids=list(sids),
        budget_usd=budget_usd,
        created_at=now,
    )
    if not repo.create_batch(record):
        raise InvalidSpec(f"batch id {batch_id} already exists; pick another id or omit it")
    return record
