"""One webhook delivery attempt: load the stored event, sign it, POST it, record or reschedule.

Waits longer than the broker may hold a countdown are chained in short hops (`due_at` rides in
the message); a delivery lease keeps two copies of one event from POSTing at the same time, and
the final outcome (delivered or gave up) is written once beside the event.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel

from shared import webhook_sink
from shared.errors import InvalidSpec, ObjectNotFound, WebhookRefused, WebhookUnreachable
from shared.events import Event
from shared.keys import delivery_key, event_key, webhook_lease
from shared.services import Services
from shared.webhook_sink import WebhookQueue
from shared.webhooks import (
    DELIVERY_TIMEOUT_S,
    allowed_networks,
    hop_s,
    payload,
    retry_delay_s,
    signed_headers,
    signing_key,
    system_resolver,
)
from worker.webhook_http import post_webhook

log = logging.getLogger("editqueue.webhooks")

LEASE_MARGIN_S = 5.0
GONE = 410  # the receiver says: stop sending

Post = Callable[[str, bytes, dict[str, str]], int]


class Delivery(StrEnum):
    """How one run of `deliver_webhook` ended."""

    DELIVERED = "delivered"
    ALREADY_DONE = "already_done"
    WAITING = "waiting"  # a hop toward the next attempt's due time
    RETRY = "retry"
    GAVE_UP = "gave_up"
    NO_WEBHOOK = "no_webhook"
    MISSING = "missing"
    BUSY = "busy"


class DeliveryRecord(BaseModel):
    """`events/{id}.delivery.json`: how an event's delivery ended."""

    event_id: str
    outcome: Literal["delivered", "gave_up"]
    attempts: int
    status: int | None = None
    error: str | None = None
    finished_at: datetime


@dataclass
class WebhookDelivery:
    """Delivers one stored event to its session's `webhook_url`."""

    services: Services
    queue: WebhookQueue
    owner: str
    post: Post | None = None  # default: post_webhook with the settings' rules
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        if self.post is None:
            self.post = functools.partial(
                post_webhook,
                allow=allowed_networks(self.services.settings),
                resolver=system_resolver,
            )

    def deliver(self, sid: str, event_id: str, attempt: int, due_at: float) -> Delivery:
        """Wait (in hops), skip what is done, then make attempt number `attempt`."""
        now = self.clock()
        if due_at > now:
            self._schedule(sid, event_id, attempt, due_at)
            return Delivery.WAITING
        store = self.services.repo.store
        if store.exists(delivery_key(sid, event_id)):
            webhook_sink.finish(store, sid, event_id)
            return Delivery.ALREADY_DONE
        try:
            event = Event.model_validate_json(store.get(event_key(sid, event_id)))
        except ObjectNotFound:
            return Delivery.MISSING  # the outbox sweep drops its entry
        url = self.services.repo.session(sid).webhook_url
        if url is None:
            webhook_sink.finish(store, sid, event_id)
            return Delivery.NO_WEBHOOK
        lease = webhook_lease(event_id)
        if not self.services.coord.acquire_lease(
            lease, self.owner, DELIVERY_TIMEOUT_S + LEASE_MARGIN_S
        ):
            return Delivery.BUSY  # another copy is POSTing it and will record or reschedule
        try:
            return self._attempt(sid, event, url, attempt)
        finally:
            self.services.coord.release_lease(lease, self.owner)

    def _attempt(self, sid: str, event: Event, url: str, attempt: int) -> Delivery:
        status, error, final = self._post(url, event)
        if error is None:
            self._finish(sid, event.event_id, "delivered", attempt, status, None)
            log.info("webhook %s delivered (attempt %d, HTTP %s)", event.event_id, attempt, status)
            return Delivery.DELIVERED
        delay = None if final or status == GONE else retry_delay_s(attempt, self.rng)
        if delay is None:
            self._finish(sid, event.event_id, "gave_up", attempt, status, error)
            log.warning(
                "webhook %s: gave up after %d attempts (%s)", event.event_id, attempt, error
            )
            return Delivery.GAVE_UP
        due_at = self.clock() + delay
        entry = webhook_sink.OutboxEntry(
            session_id=sid, event_id=event.event_id, attempt=attempt + 1, due_at=due_at
        )
        webhook_sink.put_entry(self.services.repo.store, entry)  # the sweep knows what comes next
        self._schedule(sid, event.event_id, attempt + 1, due_at)
        log.warning(
            "webhook %s attempt %d: %s; next in %.0fs", event.event_id, attempt, error, delay
        )
        return Delivery.RETRY

    def _post(self, url: str, event: Event) -> tuple[int | None, str | None, bool]:
        """The receiver's status, an error text (None when it took the event), and whether
        the error is final (a refused destination is not retried)."""
        assert self.post is not None
        try:
            key = signing_key(self.services.settings)
            if key is None:
                raise InvalidSpec("EDITQUEUE_WEBHOOK_SECRET is not set on this worker")
            body = payload(event)
            headers = signed_headers(key, event.event_id, int(self.clock()), body)
            status = self.post(url, body, headers)
        except WebhookRefused as exc:
            return None, exc.message, True
        except (WebhookUnreachable, InvalidSpec) as exc:
            return None, exc.message, False
        return status, None if 200 <= status < 300 else f"HTTP {status}", False

    def _schedule(self, sid: str, event_id: str, attempt: int, due_at: float) -> None:
        countdown = hop_s(self.clock(), due_at, self.services.settings.max_countdown_s)
        self.queue.enqueue_delivery(
            sid, event_id, attempt=attempt, due_at=due_at, countdown_s=countdown
        )

    def _finish(
        self,
        sid: str,
        event_id: str,
        outcome: Literal["delivered", "gave_up"],
        attempts: int,
        status: int | None,
        error: str | None,
    ) -> None:
        record = DeliveryRecord(
            event_id=event_id,
            outcome=outcome,
            attempts=attempts,
            status=status,
            error=error,
            finished_at=datetime.now(UTC),
        )
        store = self.services.repo.store
        store.put_if_absent(delivery_key(sid, event_id), record.model_dump_json().encode())
        webhook_sink.finish(store, sid, event_id)
