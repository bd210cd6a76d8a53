"""The event sink for webhooks: store the event once, then queue its delivery (ids only).

Events of sessions without a `webhook_url` are dropped. A re-emitted event (a redelivered turn)
finds its object already stored and is queued again only if it has not been delivered yet.

The webhook outbox: one small object per event whose delivery has not finished.

The sink writes the entry before the event and before queueing its delivery; the delivery task
moves it forward (next attempt, due time) and deletes it once the event is delivered or given
up. So a process that dies between storing an event and queueing it leaves an entry the sweep
finds: an entry overdue by more than a delivery message can take to run is queued again, with
its attempt number (the receiver sees the same `webhook-id`; the delivery lease and the
`.delivery.json` record keep a duplicate from posting twice).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from celery import Celery
from kombu.exceptions import KombuError
from pydantic import BaseModel, ValidationError

from shared.broker import CeleryEnqueuer, Enqueuer
from shared.errors import BrokerUnavailable, EditQueueError, ObjectNotFound
from shared.events import Event, EventSink, NullSink
from shared.keys import OUTBOX, delivery_key, event_key, outbox_key
from shared.sessions import SessionRepository
from shared.storage import ObjectStore
from shared.webhooks import QUEUE_WEBHOOKS, TASK_DELIVER_WEBHOOK

log = logging.getLogger("editqueue.webhooks")


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


RECORD_CACHE_SIZE = 1024


class CeleryWebhookQueue:
    """Sends `deliver_webhook` by name to the webhooks queue."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def enqueue_delivery(
        self,
        sid: str,
        event_id: str,
        *,
        attempt: int = 1,
        due_at: float = 0.0,
        countdown_s: float = 0,
    ) -> None:
        try:
            self.app.send_task(
                TASK_DELIVER_WEBHOOK,
                args=[sid, event_id],
                kwargs={"attempt": attempt, "due_at": due_at},
                countdown=countdown_s or None,
                queue=QUEUE_WEBHOOKS,
            )
        except (KombuError, OSError) as exc:
            raise BrokerUnavailable(f"cannot queue webhook {event_id}: {exc}") from exc


class WebhookSink:
    """Stores each event of a session with a webhook and queues its delivery; never raises."""

    def __init__(
        self,
        repo: SessionRepository,
        queue: WebhookQueue,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.repo = repo
        self.queue = queue
        self.clock = clock
        self._urls: OrderedDict[str, str | None] = OrderedDict()
        self._lock = threading.Lock()

    def _webhook_url(self, sid: str) -> str | None:
        with self._lock:
            if sid in self._urls:
                return self._urls[sid]
        url = self.repo.session(sid).webhook_url  # session.json is never rewritten: cache it
        with self._lock:
            self._urls[sid] = url
            while len(self._urls) > RECORD_CACHE_SIZE:
                self._urls.popitem(last=False)
        return url

    def emit(self, event: Event) -> None:
        try:
            self._emit(event)
        except EditQueueError as exc:
            log.warning("webhook event %s not queued: %s", event.event_id, exc)

    def _emit(self, event: Event) -> None:
        """Outbox entry first, then the event, then the queue: a crash at any point leaves
        either nothing stored or an entry the sweep finds (`sweep_outbox` above)."""
        sid = event.session_id
        if self._webhook_url(sid) is None:
            return
        store = self.repo.store
        if store.exists(delivery_key(sid, event.event_id)):
            return  # a re-emitted event that was already delivered (or given up)
        entry = OutboxEntry(session_id=sid, event_id=event.event_id, due_at=self.clock())
        put_entry(store, entry)
        store.put_if_absent(event_key(sid, event.event_id), event.model_dump_json().encode())
        self.queue.enqueue_delivery(sid, event.event_id)


def webhook_queue_for(enqueuer: Enqueuer) -> WebhookQueue | None:
    """The webhook queue of the enqueuer's Celery app (None for test enqueuers)."""
    return CeleryWebhookQueue(enqueuer.app) if isinstance(enqueuer, CeleryEnqueuer) else None


def webhook_sink_for(repo: SessionRepository, enqueuer: Enqueuer) -> EventSink:
    """A webhook sink sending through the enqueuer's Celery app (none for test enqueuers)."""
    queue = webhook_queue_for(enqueuer)
    return NullSink() if queue is None else WebhookSink(repo, queue)
