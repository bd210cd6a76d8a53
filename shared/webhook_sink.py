"""The event sink for webhooks: store the event once, then queue its delivery (ids only).

Events of sessions without a `webhook_url` are dropped. A re-emitted event (a redelivered turn)
finds its object already stored and is queued again only if it has not been delivered yet.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from celery import Celery
from kombu.exceptions import KombuError

from shared.broker import CeleryEnqueuer, Enqueuer
from shared.errors import BrokerUnavailable, EditQueueError
from shared.events import Event, EventSink, NullSink
from shared.outbox import OutboxEntry, WebhookQueue, put_entry
from shared.sessions import SessionRepository
from shared.webhooks import QUEUE_WEBHOOKS, TASK_DELIVER_WEBHOOK, delivery_key, event_key

log = logging.getLogger("editqueue.webhooks")

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
        either nothing stored or an entry the sweep finds (`shared/outbox.py`)."""
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
