"""The webhook outbox: an event stored but never queued is found and queued by the sweep."""

from __future__ import annotations

import random
from pathlib import Path

from shared.errors import BrokerUnavailable
from shared.events import EventKind, make_event
from shared.keys import OUTBOX, event_key, outbox_key
from shared.webhook_sink import OutboxEntry, WebhookSink, sweep_outbox
from tests.worker.conftest import World, make_world
from tests.worker.test_webhooks import NOW, SECRET, URL, Queue, Receiver
from worker.delivery import Delivery, WebhookDelivery

GRACE_S = 100.0


class DeadQueue(Queue):
    """The process 'dies' (the broker refuses) right after the event is stored."""

    def enqueue_delivery(self, sid: str, event_id: str, **_: object) -> None:
        raise BrokerUnavailable("connection refused")


def webhook_world(tmp_path: Path) -> tuple[World, str]:
    world = make_world(tmp_path, [], webhook_secret=SECRET)
    sid = world.session(["a room"])
    record = world.repo.session(sid).model_copy(update={"webhook_url": URL})
    world.store.put(f"sessions/{sid}/session.json", record.model_dump_json().encode())
    return world, sid


def test_an_event_stored_but_never_queued_is_queued_by_the_sweep_once(tmp_path: Path) -> None:
    world, sid = webhook_world(tmp_path)
    event = make_event(EventKind.TURN_SUCCEEDED, sid, NOW, turn=1)
    WebhookSink(world.repo, DeadQueue(), clock=lambda: 1000.0).emit(event)
    assert world.store.exists(event_key(sid, event.event_id))  # stored, not queued
    queue = Queue()

    early = sweep_outbox(world.store, queue, 1000.0 + GRACE_S - 1, GRACE_S)
    found = sweep_outbox(world.store, queue, 1000.0 + GRACE_S + 1, GRACE_S)
    again = sweep_outbox(world.store, queue, 1000.0 + GRACE_S + 2, GRACE_S)

    assert (early, found, again) == (0, 1, 0)  # a queued delivery gets its grace again
    assert queue.calls == [(sid, event.event_id, 1, 1000.0, 0)]


def test_a_delivered_event_leaves_the_outbox_and_the_sweep_sends_nothing(tmp_path: Path) -> None:
    world, sid = webhook_world(tmp_path)
    event = make_event(EventKind.TURN_SUCCEEDED, sid, NOW, turn=1)
    queue = Queue()
    WebhookSink(world.repo, queue, clock=lambda: 1000.0).emit(event)
    receiver = Receiver([204])
    deliver = WebhookDelivery(world.services, queue, "o", post=receiver, clock=lambda: 1000.0)

    assert deliver.deliver(sid, event.event_id, 1, 0.0) is Delivery.DELIVERED
    assert list(world.store.list(OUTBOX)) == []
    assert sweep_outbox(world.store, Queue(), 10**9, GRACE_S) == 0


def test_a_lost_retry_comes_back_with_its_attempt_and_the_same_webhook_id(tmp_path: Path) -> None:
    world, sid = webhook_world(tmp_path)
    event = make_event(EventKind.TURN_SUCCEEDED, sid, NOW, turn=1)
    WebhookSink(world.repo, Queue(), clock=lambda: 1000.0).emit(event)
    receiver = Receiver([503, 204])
    lost = Queue()  # the retry's message is lost with this queue
    first = WebhookDelivery(
        world.services, lost, "o", post=receiver, rng=random.Random(1), clock=lambda: 1000.0
    )
    assert first.deliver(sid, event.event_id, 1, 0.0) is Delivery.RETRY
    entry = OutboxEntry.model_validate_json(world.store.get(outbox_key(sid, event.event_id)))
    assert entry.attempt == 2 and entry.due_at > 1000.0
    queue = Queue()

    assert sweep_outbox(world.store, queue, entry.due_at + GRACE_S + 1, GRACE_S) == 1
    (_, event_id, attempt, due_at, _) = queue.calls[0]
    later = WebhookDelivery(world.services, queue, "o", post=receiver, clock=lambda: 10**9)
    assert later.deliver(sid, event_id, attempt, due_at) is Delivery.DELIVERED
    ids = [headers["webhook-id"] for _, _, headers in receiver.got]
    assert ids == [event.event_id, event.event_id]
