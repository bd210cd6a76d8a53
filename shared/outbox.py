"""The webhook outbox: one small object per event whose delivery has not finished.

The sink writes the entry before the event and before queueing its delivery; the delivery task
moves it forward (next attempt, due time) and deletes it once the event is delivered or given
up. So a process that dies between storing an event and queueing it leaves an entry the sweep
finds: an entry overdue by more than a delivery message can take to run is queued again, with
its attempt number (the receiver sees the same `webhook-id`; the delivery lease and the
`.delivery.json` record keep a duplicate from posting twice).
"""

from __future__ import annotations

import logging
from typing import Protocol

from pydantic import BaseModel, ValidationError

from shared.errors import ObjectNotFound
from shared.storage import ObjectStore
from shared.webhooks import delivery_key, event_key

log = logging.getLogger("editqueue.webhooks")

OUTBOX = "outbox/"


class WebhookQueue(Protocol):
    """Puts a delivery attempt on the queue."""

    def enqueue_delivery(
        self,
        sid: str,
        event_id: str,
        *,
        attempt: int = 1,
        due_at: float = 0.0,
        countdown_s: float = 0,
    ) -> None:
        """Queue `deliver_webhook(sid, event_id)`, optionally after a short countdown."""
        ...


class OutboxEntry(BaseModel):
    """`outbox/{sid}/{event_id}.json`: the next delivery attempt of an unfinished event."""

    session_id: str
    event_id: str
    attempt: int = 1
    due_at: float  # unix seconds the attempt is due (its message may wait in the broker until)


def outbox_key(sid: str, event_id: str) -> str:
    """Where an unfinished event's outbox entry lives."""
    return f"{OUTBOX}{sid}/{event_id}.json"


def put_entry(store: ObjectStore, entry: OutboxEntry) -> None:
    """Write (or move forward) an event's entry."""
    store.put(outbox_key(entry.session_id, entry.event_id), entry.model_dump_json().encode())


def finish(store: ObjectStore, sid: str, event_id: str) -> None:
    """The event is delivered or given up: nothing left to do."""
    store.delete(outbox_key(sid, event_id))


def _entry(store: ObjectStore, key: str) -> OutboxEntry | None:
    try:
        return OutboxEntry.model_validate_json(store.get(key))
    except (ObjectNotFound, ValidationError):
        return None


def sweep_outbox(store: ObjectStore, queue: WebhookQueue, now: float, grace_s: float) -> int:
    """Queue every event whose entry is overdue by `grace_s`; returns how many were queued."""
    queued = 0
    for key in store.list(OUTBOX):
        entry = _entry(store, key)
        if entry is None or entry.due_at + grace_s > now:
            continue
        sid, event_id = entry.session_id, entry.event_id
        if store.exists(delivery_key(sid, event_id)) or not store.exists(event_key(sid, event_id)):
            store.delete(key)  # finished, or the emitter died before storing the event
            continue
        queue.enqueue_delivery(sid, event_id, attempt=entry.attempt, due_at=entry.due_at)
        put_entry(store, entry.model_copy(update={"due_at": now}))  # wait grace_s again
        queued += 1
    if queued:
        log.warning("outbox: %d webhook event(s) had no delivery queued; queued them", queued)
    return queued
