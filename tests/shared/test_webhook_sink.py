"""The webhook sink stores each event once and queues its delivery, only for webhook sessions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from celery import Celery

from shared.broker import CeleryEnqueuer
from shared.errors import StorageUnavailable
from shared.events import EventKind, NullSink, make_event
from shared.keys import delivery_key, event_key
from shared.session_records import SessionRecord
from shared.sessions import SessionRepository
from shared.storage import MemoryStore
from shared.webhook_sink import CeleryWebhookQueue, WebhookSink, webhook_sink_for
from shared.webhooks import QUEUE_WEBHOOKS, TASK_DELIVER_WEBHOOK

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@dataclass
class RecordingQueue:
    calls: list[tuple[str, str]] = field(default_factory=list)

    def enqueue_delivery(
        self,
        sid: str,
        event_id: str,
        *,
        attempt: int = 1,
        due_at: float = 0.0,
        countdown_s: float = 0,
    ) -> None:
        self.calls.append((sid, event_id))


def repo_with(*records: tuple[str, str | None]) -> SessionRepository:
    repo = SessionRepository(MemoryStore())
    for sid, url in records:
        repo.create_session(
            SessionRecord(session_id=sid, model="m", webhook_url=url, created_at=NOW)
        )
    return repo


def test_an_event_of_a_webhook_session_is_stored_and_queued_once() -> None:
    repo, queue = repo_with(("s1", "https://hooks.example/x")), RecordingQueue()
    sink = WebhookSink(repo, queue)
    event = make_event(EventKind.TURN_SUCCEEDED, "s1", NOW, turn=1)

    sink.emit(event)

    assert queue.calls == [("s1", event.event_id)]
    stored = repo.store.get(event_key("s1", event.event_id))
    assert stored == event.model_dump_json().encode()


def test_a_re_emitted_event_is_queued_again_only_until_delivered() -> None:
    repo, queue = repo_with(("s1", "https://hooks.example/x")), RecordingQueue()
    sink = WebhookSink(repo, queue)
    event = make_event(EventKind.SESSION_COMPLETED, "s1", NOW, turn=3)

    sink.emit(event)
    sink.emit(event)
    repo.store.put(delivery_key("s1", event.event_id), b"{}")
    sink.emit(event)

    assert queue.calls == [("s1", event.event_id)] * 2


def test_sessions_without_a_webhook_are_ignored() -> None:
    repo, queue = repo_with(("s1", None)), RecordingQueue()

    WebhookSink(repo, queue).emit(make_event(EventKind.TURN_FAILED, "s1", NOW, turn=1))

    assert queue.calls == []
    assert list(repo.store.list("sessions/s1/events/")) == []


def test_a_storage_failure_is_swallowed_never_raised() -> None:
    class Broken(MemoryStore):
        def get(self, key: str) -> bytes:
            raise StorageUnavailable("s3 down")

    queue = RecordingQueue()
    WebhookSink(SessionRepository(Broken()), queue).emit(
        make_event(EventKind.TURN_FAILED, "s1", NOW, turn=1)
    )

    assert queue.calls == []


def test_the_session_record_is_read_once_per_session(monkeypatch: pytest.MonkeyPatch) -> None:
    repo, queue = repo_with(("s1", "https://hooks.example/x")), RecordingQueue()
    reads: list[str] = []
    original = repo.session
    monkeypatch.setattr(repo, "session", lambda sid: reads.append(sid) or original(sid))
    sink = WebhookSink(repo, queue)

    for turn in (1, 2, 3):
        sink.emit(make_event(EventKind.TURN_SUCCEEDED, "s1", NOW, turn=turn))

    assert reads == ["s1"]
    assert len(queue.calls) == 3


def test_celery_queue_sends_ids_only_to_the_webhooks_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    app = Celery(set_as_current=False)
    sent: list[dict[str, object]] = []
    monkeypatch.setattr(app, "send_task", lambda name, **kw: sent.append({"name": name, **kw}))

    CeleryWebhookQueue(app).enqueue_delivery("s1", "evt_a", attempt=2, due_at=5.0, countdown_s=3)

    assert sent == [
        {
            "name": TASK_DELIVER_WEBHOOK,
            "args": ["s1", "evt_a"],
            "kwargs": {"attempt": 2, "due_at": 5.0},
            "countdown": 3,
            "queue": QUEUE_WEBHOOKS,
        }
    ]


def test_only_a_celery_enqueuer_gets_a_webhook_sink() -> None:
    repo = repo_with()
    app = Celery(set_as_current=False)

    assert isinstance(webhook_sink_for(repo, CeleryEnqueuer(app)), WebhookSink)
    assert isinstance(webhook_sink_for(repo, RecordingQueue()), NullSink)  # type: ignore[arg-type]
