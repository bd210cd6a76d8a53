"""The broker side every process shares: task names, Celery settings, sending turns by name, and
putting a turn on the queue (`dispatch`: mark it queued in the live index, then send its ids).

Producers never import the worker: they send `run_turn` by name with ids only.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Protocol

from celery import Celery
from kombu.exceptions import KombuError

from shared import tracing
from shared.config import Settings
from shared.coordination import Coordinator, LiveTurn
from shared.errors import BrokerUnavailable, EditQueueError
from shared.keys import FLEX_REDIS_PREFIX
from shared.models import TurnState
from shared.turn_records import ErrorInfo

TASK_RUN_TURN = "editqueue.run_turn"
QUEUE_TURNS = "editqueue.turns"
QUEUE_FLEX = "editqueue.flex"
LANE_FLEX = "flex"
LANE_STANDARD = "standard"
LANE_BATCH = "batch"  # not a broker queue: batch-tier turns wait for the batcher's next wave
# Priority by turn depth (Redis transport: 0 is served first, 9 last), so a session's next turn
# goes ahead of new sessions' first turns and sessions finish one after another.
PRIORITY_STEPS = 10


def turn_priority(index: int) -> int:
    """Broker priority for turn n: deeper turns first."""
    return max(0, PRIORITY_STEPS - 1 - min(index, PRIORITY_STEPS - 1))


def celery_config(settings: Settings, lane: str = LANE_STANDARD) -> dict[str, Any]:
    """The Celery settings measured in the team reference (acks late, fast unacked restore...).

    The flex lane gets its own queue, key prefix and visibility timeout.
    """
    config = _base_config(settings)
    if settings.broker_url.startswith("sentinel://"):  # kombu's Sentinel transport
        config["broker_transport_options"]["master_name"] = settings.sentinel_master
    if lane == LANE_FLEX:
        config["task_default_queue"] = QUEUE_FLEX
        options = config["broker_transport_options"]
        options["visibility_timeout"] = settings.flex_visibility_timeout_s
        # The flex lane's keys live under their own prefix, so its unacked index (and the
        # visibility timeout that restores from it) is apart from the standard lane's: a standard
        # worker would otherwise restore a 10-minute flex call as lost after its own 5 minutes.
        options["global_keyprefix"] = FLEX_REDIS_PREFIX
    return config


def _base_config(settings: Settings) -> dict[str, Any]:
    return {
        "broker_url": settings.broker_url,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "task_default_queue": QUEUE_TURNS,
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        # Task events for Flower and celery-exporter (queue length, task counters, runtimes):
        # editqueue's own metrics do not duplicate them. Redis transport only (SQS has none).
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "broker_transport_options": {
            "visibility_timeout": settings.visibility_timeout_s,
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
            "queue_order_strategy": "priority",
            "priority_steps": list(range(PRIORITY_STEPS)),
            "sep": ":",
            "polling_interval": 0.05,
        },
    }


def queue_depths(app: Celery, queues: list[str]) -> dict[str, int]:
    """Messages waiting in each queue, every priority level counted (kombu's own count).

    celery-exporter's Redis queue length reads only the base list, and editqueue's turns wait in
    the priority lists beside it (`editqueue.turns:8` for first turns), so it would show ~0.
    """
    depths: dict[str, int] = {}
    with app.connection_for_read() as conn:
        channel = conn.default_channel
        for queue in queues:
            try:
                depths[queue] = int(channel.queue_declare(queue=queue, passive=True).message_count)
            except conn.channel_errors:  # 404: never declared, nothing was sent to it yet
                depths[queue] = 0
    return depths


def make_celery(settings: Settings, name: str = "editqueue", lane: str = LANE_STANDARD) -> Celery:
    """A Celery app configured for editqueue (no tasks registered: producers send by name)."""
    app = Celery(name, set_as_current=False)
    app.conf.update(celery_config(settings, lane))
    return app


class Enqueuer(Protocol):
    """Puts a turn on the queue; the message carries ids only."""

    def enqueue_turn(
        self,
        sid: str,
        index: int,
        *,
        attempt: int = 1,
        countdown_s: float = 0,
        lane: str = LANE_STANDARD,
    ) -> None:
        """Queue `run_turn(sid, index)`, optionally after a short countdown.

        An enqueuer that serves lanes also takes `lane="flex"` (only ever passed when not
        standard, so single-lane fakes keep working).
        """
        ...


def turn_task_id(sid: str, index: int, attempt: int, lane: str = LANE_STANDARD) -> str:
    """A deterministic task id, so logs and duplicates of one turn attempt line up."""
    suffix = "" if lane == LANE_STANDARD else f":{lane}"
    return f"{sid}:{index:04d}:{attempt}{suffix}"


class CeleryEnqueuer:
    """Sends `run_turn` by name through a Celery app (flex turns through the flex lane's app).

    Without a flex app (the embedded run), flex turns travel on the standard queue, marked flex.
    """

    def __init__(self, app: Celery, flex_app: Celery | None = None) -> None:
        self.app = app
        self.flex_app = flex_app

    def enqueue_turn(
        self,
        sid: str,
        index: int,
        *,
        attempt: int = 1,
        countdown_s: float = 0,
        lane: str = LANE_STANDARD,
    ) -> None:
        try:
            self._send(sid, index, attempt, countdown_s, lane)
        except (KombuError, OSError) as exc:
            raise BrokerUnavailable(f"cannot queue turn {index} of {sid}: {exc}") from exc

    def _send(self, sid: str, index: int, attempt: int, countdown_s: float, lane: str) -> None:
        flex = lane == LANE_FLEX and self.flex_app is not None
        kwargs: dict[str, Any] = {"attempt": attempt}
        if lane != LANE_STANDARD:
            kwargs["lane"] = lane
        app = self.flex_app if flex and self.flex_app is not None else self.app
        headers: dict[str, str] = {}  # the trace context (W3C traceparent) when tracing is on
        with tracing.producer_span(
            f"enqueue {TASK_RUN_TURN}",
            headers,
            editqueue__session_id=sid,
            editqueue__turn=index,
            editqueue__attempt=attempt,
            editqueue__lane=lane,
        ):
            app.send_task(
                TASK_RUN_TURN,
                args=[sid, index],
                kwargs=kwargs,
                task_id=turn_task_id(sid, index, attempt, lane),
                countdown=countdown_s or None,
                priority=turn_priority(index),
                queue=QUEUE_FLEX if flex else QUEUE_TURNS,
                **({"headers": headers} if headers else {}),
            )


class Dispatching(Protocol):
    """What `dispatch` uses of a process's services (shared/services.py's `Services` is one)."""

    @property
    def coord(self) -> Coordinator: ...

    @property
    def enqueuer(self) -> Enqueuer: ...


def dispatch(
    services: Dispatching,
    sid: str,
    index: int,
    *,
    attempt: int = 1,
    countdown_s: float = 0.0,
    error: ErrorInfo | None = None,
    reason: str | None = None,
    lane: str = LANE_STANDARD,
) -> None:
    """Queue `run_turn(sid, index)` on its lane; the live entry lets reconcile tell queued from
    lost. Only a non-standard lane is named to the enqueuer. A batch-tier turn is not sent to
    the broker: it is marked due for the batcher's next wave."""
    now = time.time()
    if lane == LANE_BATCH:
        waiting = LiveTurn(
            state=TurnState.QUEUED,
            attempts=attempt - 1,
            error=error,
            reason="batch",
            updated_at=now,
        )
        services.coord.set_live(sid, index, waiting)
        services.coord.mark_batch_due(sid, index, attempt, now + countdown_s)
        return
    live = LiveTurn(
        state=TurnState.QUEUED,
        attempts=attempt - 1,
        error=error,
        reason=reason,
        due_at=now + countdown_s if countdown_s else None,
        updated_at=now,
    )
    services.coord.set_live(sid, index, live)
    try:
        extra: dict[str, Any] = {} if lane == LANE_STANDARD else {"lane": lane}
        services.enqueuer.enqueue_turn(
            sid, index, attempt=attempt, countdown_s=countdown_s, **extra
        )
    except EditQueueError:
        # Nothing was sent: a fresh "queued" entry would make reconcile skip the turn for
        # reconcile_stale_s, so the advised `editqueue reconcile` could not bring it back.
        with contextlib.suppress(EditQueueError):
            services.coord.clear_live(sid, index)
        raise
