"""The broker side every process shares: task names, Celery settings, and sending turns by name.

Producers never import the worker: they send `run_turn` by name with ids only.
"""

from __future__ import annotations

from typing import Any, Protocol

from celery import Celery
from kombu.exceptions import KombuError

from shared.config import Settings
from shared.errors import BrokerUnavailable

TASK_RUN_TURN = "editqueue.run_turn"
QUEUE_TURNS = "editqueue.turns"
# Priority by turn depth (Redis transport: 0 is served first, 9 last), so a session's next turn
# goes ahead of new sessions' first turns and sessions finish one after another.
PRIORITY_STEPS = 10


def turn_priority(index: int) -> int:
    """Broker priority for turn n: deeper turns first."""
    return max(0, PRIORITY_STEPS - 1 - min(index, PRIORITY_STEPS - 1))


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery settings measured in the team reference (acks late, fast unacked restore...)."""
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


def make_celery(settings: Settings, name: str = "editqueue") -> Celery:
    """A Celery app configured for editqueue (no tasks registered: producers send by name)."""
    app = Celery(name, set_as_current=False)
    app.conf.update(celery_config(settings))
    return app


class Enqueuer(Protocol):
    """Puts a turn on the queue; the message carries ids only."""

    def enqueue_turn(
        self, sid: str, index: int, *, attempt: int = 1, countdown_s: float = 0
    ) -> None:
        """Queue `run_turn(sid, index)`, optionally after a short countdown."""
        ...


def turn_task_id(sid: str, index: int, attempt: int) -> str:
    """A deterministic task id, so logs and duplicates of one turn attempt line up."""
    return f"{sid}:{index:04d}:{attempt}"


class CeleryEnqueuer:
    """Sends `run_turn` by name through a Celery app."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def enqueue_turn(
        self, sid: str, index: int, *, attempt: int = 1, countdown_s: float = 0
    ) -> None:
        try:
            self._send(sid, index, attempt, countdown_s)
        except (KombuError, OSError) as exc:
            raise BrokerUnavailable(f"cannot queue turn {index} of {sid}: {exc}") from exc

    def _send(self, sid: str, index: int, attempt: int, countdown_s: float) -> None:
        self.app.send_task(
            TASK_RUN_TURN,
            args=[sid, index],
            kwargs={"attempt": attempt},
            task_id=turn_task_id(sid, index, attempt),
            countdown=countdown_s or None,
            priority=turn_priority(index),
            queue=QUEUE_TURNS,
        )
