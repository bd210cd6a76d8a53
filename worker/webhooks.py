"""The webhook delivery task: a thin shell around `worker.delivery.WebhookDelivery`.

It runs on its own queue (`editqueue.webhooks`), so a slow receiver never holds up a turn's
message; `editqueue worker` consumes both queues.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from celery import shared_task

from shared.errors import TransientError
from shared.ids import validate_stored_id
from shared.metrics import record_webhook
from shared.webhook_sink import CeleryWebhookQueue
from shared.webhooks import TASK_DELIVER_WEBHOOK, valid_event_id
from worker.delivery import WebhookDelivery
from worker.wiring import services_of

log = logging.getLogger("editqueue.webhooks")

REQUEUE_S = 5.0


@shared_task(  # type: ignore[untyped-decorator]
    name=TASK_DELIVER_WEBHOOK, bind=True, acks_late=True, ignore_result=True
)
def deliver_webhook(
    self: Any, session_id: str, event_id: str, attempt: int = 1, due_at: float = 0.0
) -> str:
    """Deliver one stored event; the message carries ids, the attempt and when it is due."""
    validate_stored_id(session_id)
    valid_event_id(event_id)
    if not isinstance(attempt, int) or attempt < 1 or not isinstance(due_at, int | float):
        raise ValueError(f"deliver_webhook({session_id!r}, {event_id!r}): bad attempt or due_at")
    services = services_of(self.app)
    queue = CeleryWebhookQueue(self.app)
    delivery = WebhookDelivery(services, queue, owner=self.request.id or uuid.uuid4().hex)
    try:
        outcome = delivery.deliver(session_id, event_id, attempt, float(due_at)).value
        record_webhook(outcome)
        return outcome
    except TransientError as exc:
        # The store or Redis failed around the POST: try the same attempt again shortly.
        log.warning("webhook %s: %s; requeued", event_id, exc)
        queue.enqueue_delivery(
            session_id, event_id, attempt=attempt, due_at=due_at, countdown_s=REQUEUE_S
        )
        return "requeued"
