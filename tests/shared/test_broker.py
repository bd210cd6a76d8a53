"""Broker side: turn priorities, the measured Celery settings, and ids-only turn messages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import pytest
from celery import Celery

from shared.broker import (
    PRIORITY_STEPS,
    QUEUE_TURNS,
    TASK_RUN_TURN,
    CeleryEnqueuer,
    celery_config,
    make_celery,
    turn_priority,
    turn_task_id,
)
from shared.config import load_settings


@pytest.mark.parametrize(
    ("index", "priority"),
    [(0, 9), (1, 8), (2, 7), (3, 6), (5, 4), (8, 1), (9, 0), (10, 0), (500, 0)],
)
def test_turn_priority_per_depth(index: int, priority: int) -> None:
    assert turn_priority(index) == priority


def test_deeper_turns_get_a_smaller_priority_number_until_the_floor() -> None:
    priorities = [turn_priority(n) for n in range(1, 30)]
    assert all(a > b for a, b in pairwise(priorities[:9]))
    assert all(a >= b for a, b in pairwise(priorities))
    assert set(priorities) <= set(range(PRIORITY_STEPS))
    assert priorities[-1] == 0


@pytest.mark.parametrize(
    ("sid", "index", "attempt", "task_id"),
    [("s1", 1, 1, "s1:0001:1"), ("abc", 42, 3, "abc:0042:3"), ("s", 12345, 10, "s:12345:10")],
)
def test_turn_task_ids_are_deterministic(sid: str, index: int, attempt: int, task_id: str) -> None:
    assert turn_task_id(sid, index, attempt) == task_id


def test_celery_config_has_the_measured_reliability_settings() -> None:
    settings = load_settings(broker_url="redis://broker:6379/3", visibility_timeout_s=777)
    config = celery_config(settings)
    assert config["broker_url"] == "redis://broker:6379/3"
    assert config["task_acks_late"] is True
    assert config["task_reject_on_worker_lost"] is True
    assert config["worker_prefetch_multiplier"] == 1
    assert config["task_serializer"] == "json"
    assert config["result_serializer"] == "json"
    assert config["accept_content"] == ["json"]
    assert config["task_default_queue"] == QUEUE_TURNS == "editqueue.turns"
    options = config["broker_transport_options"]
    assert options["visibility_timeout"] == 777
    assert options["unacked_restore_interval"] == 1
    assert options["unacked_restore_throttle"] == 1
    assert options["queue_order_strategy"] == "priority"
    assert options["priority_steps"] == list(range(10))


def test_make_celery_applies_the_config_without_becoming_the_current_app() -> None:
    settings = load_settings(broker_url="memory://", visibility_timeout_s=600)
    app = make_celery(settings, name="editqueue-test")
    assert app.main == "editqueue-test"
    assert app.conf.broker_url == "memory://"
    assert app.conf.task_acks_late is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.accept_content == ["json"]
    assert app.conf.broker_transport_options["visibility_timeout"] == 600
    assert TASK_RUN_TURN not in app.tasks  # producers send by name


@pytest.fixture
def app() -> Celery:
    return make_celery(load_settings(broker_url="memory://"))


def recorder(monkeypatch: pytest.MonkeyPatch, app: Celery) -> list[tuple[tuple, dict]]:
    calls: list[tuple[tuple, dict]] = []
    monkeypatch.setattr(app, "send_task", lambda *a, **kw: calls.append((a, kw)))
    return calls


def test_enqueue_turn_sends_run_turn_by_name_with_ids_only(
    monkeypatch: pytest.MonkeyPatch, app: Celery
) -> None:
    calls = recorder(monkeypatch, app)
    CeleryEnqueuer(app).enqueue_turn("s1", 3)
    assert calls == [
        (
            ("editqueue.run_turn",),
            {
                "args": ["s1", 3],
                "kwargs": {"attempt": 1},
                "task_id": "s1:0003:1",
                "countdown": None,
                "priority": 6,
                "queue": "editqueue.turns",
            },
        )
    ]


def test_enqueue_turn_passes_the_attempt_and_countdown(
    monkeypatch: pytest.MonkeyPatch, app: Celery
) -> None:
    calls = recorder(monkeypatch, app)
    CeleryEnqueuer(app).enqueue_turn("s1", 12, attempt=4, countdown_s=7.5)
    _, kwargs = calls[0]
    assert kwargs["kwargs"] == {"attempt": 4}
    assert kwargs["task_id"] == "s1:0012:4"
    assert kwargs["countdown"] == 7.5
    assert kwargs["priority"] == 0


@pytest.fixture
def turns_queue(app: Celery) -> Iterator[Any]:
    with app.connection_for_read() as conn:
        queue = conn.SimpleQueue(QUEUE_TURNS)
        queue.clear()  # the memory transport is shared by the whole test process
        yield queue
        queue.clear()
        queue.close()


def test_the_message_on_the_memory_broker_is_json_with_ids_only(
    app: Celery, turns_queue: Any
) -> None:
    CeleryEnqueuer(app).enqueue_turn("sess-42", 2, attempt=3)
    message = turns_queue.get(timeout=2)
    assert message.content_type == "application/json"
    assert message.headers["task"] == "editqueue.run_turn"
    assert message.headers["id"] == "sess-42:0002:3"
    assert message.headers["eta"] is None
    args, kwargs, _embed = json.loads(message.body)
    assert (args, kwargs) == (["sess-42", 2], {"attempt": 3})
    assert message.properties["priority"] == 7
    assert len(message.body) < 200  # no image bytes or signatures can ride along
    message.ack()


def test_a_countdown_becomes_an_eta_on_the_message(app: Celery, turns_queue: Any) -> None:
    CeleryEnqueuer(app).enqueue_turn("s1", 1, countdown_s=30)
    message = turns_queue.get(timeout=2)
    assert message.headers["eta"] is not None
    message.ack()
