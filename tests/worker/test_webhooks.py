"""Webhook delivery: signed POSTs, one outcome per event, backoff in hops the broker can hold."""

from __future__ import annotations

import base64
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.errors import WebhookUnreachable
from shared.events import EventKind, make_event
from shared.keys import delivery_key, event_key
from shared.webhooks import verify
from tests.worker.conftest import World, make_world
from worker.delivery import Delivery, DeliveryRecord, WebhookDelivery

KEY = bytes(range(1, 33))
SECRET = "whsec_" + base64.b64encode(KEY).decode()
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
URL = "https://hooks.example/editqueue"


@dataclass
class Queue:
    calls: list[tuple[str, str, int, float, float]] = field(default_factory=list)

    def enqueue_delivery(
        self,
        sid: str,
        event_id: str,
        *,
        attempt: int = 1,
        due_at: float = 0.0,
        countdown_s: float = 0,
    ) -> None:
        self.calls.append((sid, event_id, attempt, due_at, countdown_s))


@dataclass
class Receiver:
    """Answers with the scripted statuses (or raises) and keeps what it got."""

    answers: list[int | Exception]
    got: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self.got.append((url, body, headers))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path, [], webhook_secret=SECRET)


def stored_event(world: World, url: str | None = URL) -> str:
    sid = world.session(["a room"])
    if url is not None:
        record = world.repo.session(sid).model_copy(update={"webhook_url": url})
        world.store.put(f"sessions/{sid}/session.json", record.model_dump_json().encode())
    event = make_event(EventKind.TURN_SUCCEEDED, sid, NOW, turn=1, data={"cost_usd": 0.067})
    world.store.put(event_key(sid, event.event_id), event.model_dump_json().encode())
    return event.event_id


def delivery(
    world: World, receiver: Receiver, queue: Queue, now: float = 1000.0
) -> WebhookDelivery:
    return WebhookDelivery(
        world.services, queue, "owner-1", post=receiver, rng=random.Random(3), clock=lambda: now
    )


def outcome(world: World, event_id: str) -> DeliveryRecord:
    return DeliveryRecord.model_validate_json(world.store.get(delivery_key("s1", event_id)))


def test_a_delivered_event_is_signed_recorded_and_not_sent_again(world: World) -> None:
    event_id, receiver, queue = stored_event(world), Receiver([204]), Queue()
    runner = delivery(world, receiver, queue)

    assert runner.deliver("s1", event_id, 1, 0.0) is Delivery.DELIVERED
    assert runner.deliver("s1", event_id, 1, 0.0) is Delivery.ALREADY_DONE

    [(url, body, headers)] = receiver.got
    assert url == URL
    assert headers["webhook-id"] == event_id
    assert headers["webhook-timestamp"] == "1000"
    assert verify(KEY, headers, body, now=1000, tolerance_s=300)
    assert json.loads(body)["type"] == "turn.succeeded"
    assert json.loads(body)["data"]["cost_usd"] == 0.067
    assert (outcome(world, event_id).outcome, outcome(world, event_id).status) == ("delivered", 204)
    assert queue.calls == []


@pytest.mark.parametrize("answer", [500, 429, 302, WebhookUnreachable("connection refused")])
def test_a_failed_attempt_is_rescheduled_with_a_countdown_the_broker_can_hold(
    world: World, answer: int | Exception
) -> None:
    event_id, queue = stored_event(world), Queue()

    result = delivery(world, Receiver([answer]), queue).deliver("s1", event_id, 1, 0.0)

    assert result is Delivery.RETRY
    [(_, eid, attempt, due_at, countdown)] = queue.calls
    assert (eid, attempt) == (event_id, 2)
    assert 1000 + 4.5 <= due_at <= 1000 + 5.5
    assert countdown == pytest.approx(due_at - 1000)
    assert not world.store.exists(delivery_key("s1", event_id))


def test_a_long_wait_is_chained_in_hops_no_longer_than_max_countdown(world: World) -> None:
    event_id, queue, receiver = stored_event(world), Queue(), Receiver([])
    due = 1000.0 + 7200
    cap = world.services.settings.max_countdown_s

    result = delivery(world, receiver, queue, now=1000.0).deliver("s1", event_id, 6, due)

    assert result is Delivery.WAITING
    assert receiver.got == []
    assert queue.calls == [("s1", event_id, 6, due, cap)]
    assert cap <= world.services.settings.visibility_timeout_s / 4


def test_after_the_last_retry_it_gives_up_and_records_why(world: World) -> None:
    event_id, queue = stored_event(world), Queue()

    result = delivery(world, Receiver([503]), queue).deliver("s1", event_id, 9, 0.0)

    assert result is Delivery.GAVE_UP
    assert queue.calls == []
    assert (outcome(world, event_id).outcome, outcome(world, event_id).error) == (
        "gave_up",
        "HTTP 503",
    )


def test_410_gone_stops_at_once(world: World) -> None:
    event_id, queue = stored_event(world), Queue()

    assert (
        delivery(world, Receiver([410]), queue).deliver("s1", event_id, 1, 0.0) is Delivery.GAVE_UP
    )
    assert queue.calls == []


def test_another_copy_holding_the_lease_does_not_post_twice(world: World) -> None:
    event_id, receiver = stored_event(world), Receiver([200])
    assert world.coord.acquire_lease(f"webhook:{event_id}", "other", 30)

    assert delivery(world, receiver, Queue()).deliver("s1", event_id, 1, 0.0) is Delivery.BUSY
    assert receiver.got == []


def test_without_a_secret_on_the_worker_nothing_is_sent_and_it_retries(tmp_path: Path) -> None:
    world = make_world(tmp_path, [])
    event_id, receiver, queue = stored_event(world), Receiver([200]), Queue()

    assert delivery(world, receiver, queue).deliver("s1", event_id, 1, 0.0) is Delivery.RETRY
    assert receiver.got == []
    assert len(queue.calls) == 1


def test_missing_event_or_webhook_sends_nothing(world: World) -> None:
    receiver = Receiver([200])
    assert delivery(world, receiver, Queue()).deliver("s1", "evt_nope", 1, 0.0) is Delivery.MISSING
    event_id = stored_event(world, url=None)
    assert delivery(world, receiver, Queue()).deliver("s1", event_id, 1, 0.0) is Delivery.NO_WEBHOOK
    assert receiver.got == []


def test_a_destination_refused_at_delivery_is_given_up_at_once_naming_the_rule(
    world: World,
) -> None:
    """The default POST checks the destination again; a loopback literal is never contacted."""
    event_id = stored_event(world, url="http://127.0.0.1:9/hook")
    sid = world.repo.session_ids().__next__()
    deliver = WebhookDelivery(world.services, Queue(), "owner-1", clock=lambda: 1000.0)

    assert deliver.deliver(sid, event_id, 1, 0.0) is Delivery.GAVE_UP
    record = outcome(world, event_id)
    assert record.attempts == 1 and record.error is not None and "loopback" in record.error
