"""The webhook outbox with a real worker: an event stored but never queued is delivered anyway.

Injected: the state a process leaves when it dies between storing an event and queueing its
delivery (the event and its outbox entry in S3, nothing in the broker). Must hold: the worker's
periodic sweep finds the entry and queues it, the loopback receiver gets the signed POST once,
with the event's id as `webhook-id`, and the entry is gone afterwards.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from shared.events import EventKind, make_event
from shared.keys import delivery_key, event_key, outbox_key
from shared.s3 import S3Store
from shared.session_records import SessionRecord
from shared.sessions import SessionRepository
from shared.webhook_sink import OutboxEntry, put_entry
from tests.integration.services import Stack, wait_until
from tests.integration.test_http_api import WEBHOOK_SECRET

pytestmark = pytest.mark.integration


class _Hooks(BaseHTTPRequestHandler):
    got: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        type(self).got.append(self.headers.get("webhook-id", ""))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[str]]]:
    got: ClassVar[list[str]] = []
    handler = type("Hooks", (_Hooks,), {"got": got})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks", got
    server.shutdown()
    server.server_close()


def test_an_event_stored_but_never_queued_is_delivered_by_the_sweep(
    stack: Stack, receiver: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, got = receiver
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")  # moto's; the S3 writes below play the dead process
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    store = S3Store(stack.bucket, stack.prefix, endpoint_url=stack.s3_url)
    repo = SessionRepository(store)
    now = datetime.now(UTC)
    record = SessionRecord(session_id="outbox-1", model="m", webhook_url=url, created_at=now)
    assert repo.create_session(record)
    event = make_event(EventKind.SESSION_CANCELLED, "outbox-1", now)
    entry = OutboxEntry(session_id="outbox-1", event_id=event.event_id, due_at=time.time() - 3600)
    put_entry(store, entry)
    store.put(event_key("outbox-1", event.event_id), event.model_dump_json().encode())
    stack.extra_env.update(
        EDITQUEUE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        EDITQUEUE_WEBHOOK_ALLOW_CIDRS="127.0.0.0/8",
        EDITQUEUE_SWEEP_INTERVAL_S="1",
    )

    stack.start_worker()
    wait_until(lambda: store.exists(delivery_key("outbox-1", event.event_id)), 30, "delivery")
    # The delivery record is written first, then the outbox entry dropped.
    wait_until(lambda: not store.exists(outbox_key("outbox-1", event.event_id)), 10, "entry gone")

    assert got == [event.event_id]
