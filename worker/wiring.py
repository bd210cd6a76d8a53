"""A worker's services: the core (`shared.services`) plus the Gemini client, the call gate, the
budget ledger and the Batch API, built once per process and hung on the Celery app.

Tasks reach them through `self.app` (`services_of`); `editqueue run` hangs its in-process core
on its app (`APP_CORE_ATTR`) and the worker pieces are added to it here, in the same process.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any

from shared.config import Settings, load_settings
from shared.coordination import Coordinator
from shared.gemini import GeminiClient, HttpGeminiClient
from shared.redis_state import RedisClient
from shared.services import APP_CORE_ATTR, Services, build_services
from worker.budget import BudgetLedger, MemoryLedger, RedisLedger
from worker.gate import CallGate, MemoryGate, OpenGate, RedisGate
from worker.gemini_batch import BatchApi, HttpBatchApi
from worker.interactions import HttpInteractionsClient, InteractionsClient

APP_ATTR = "editqueue_wiring"


@dataclass(frozen=True, kw_only=True)
class WorkerServices(Services):
    """Everything a worker uses: the core plus what only a worker calls."""

    gemini: GeminiClient
    gate: CallGate = field(default_factory=OpenGate)
    ledger: BudgetLedger = field(default_factory=MemoryLedger)
    batch_api: BatchApi | None = None  # the Files and Batch APIs, for batch-tier waves
    interactions: InteractionsClient | None = None  # the Interactions API (transport)


def _redis_client(coord: Coordinator) -> RedisClient | None:
    client = getattr(coord, "client", None)
    return client if isinstance(client, RedisClient) else None


def gate_for(settings: Settings, coord: Coordinator) -> CallGate:
    """The fleet gate in Redis when limits are set and Redis is the broker, else in memory."""
    if settings.rate_limit is None and settings.max_inflight is None:
        return OpenGate()
    client = _redis_client(coord)
    if client is None:
        return MemoryGate(settings.rate_limit, settings.max_inflight)
    return RedisGate(client, settings.rate_limit, settings.max_inflight)


def ledger_for(settings: Settings, coord: Coordinator) -> BudgetLedger:
    """The budget ledger in Redis for a fleet, else in memory."""
    client = _redis_client(coord)
    return MemoryLedger() if client is None else RedisLedger(client, settings.longest_task_s)


def build_worker_services(
    settings: Settings,
    *,
    core: Services | None = None,
    gemini: GeminiClient | None = None,
    interactions: InteractionsClient | None = None,
) -> WorkerServices:
    """The worker's services: `core` (or the core built from the settings) plus its own."""
    core = core or build_services(settings)
    settings = core.settings
    return WorkerServices(
        settings=settings,
        repo=core.repo,
        coord=core.coord,
        enqueuer=core.enqueuer,
        blobs=core.blobs,
        events=core.events,
        gemini=gemini
        or HttpGeminiClient(
            settings.api_base_url, settings.api_key, timeout_s=settings.call_timeout_s
        ),
        gate=gate_for(settings, core.coord),
        ledger=ledger_for(settings, core.coord),
        batch_api=HttpBatchApi(settings.api_base_url, settings.api_key),
        interactions=interactions
        or HttpInteractionsClient(
            settings.api_base_url, settings.api_key, timeout_s=settings.call_timeout_s
        ),
    )


class ProcessServices:
    """One Celery app's worker services, built on first use in each process (a prefork child
    builds its own: Redis and S3 connections are not shared across a fork)."""

    def __init__(self, settings: Settings | None = None, core: Services | None = None) -> None:
        self._settings = settings
        self._core = core
        self._lock = threading.Lock()
        self._built: tuple[int, WorkerServices] | None = None

    def configure(self, settings: Settings) -> None:
        """The settings to build from (a worker's checked settings)."""
        with self._lock:
            self._settings = settings
            self._built = None

    def get(self) -> WorkerServices:
        """This process's services, built once."""
        with self._lock:
            if self._built is None or self._built[0] != os.getpid():
                settings = self._settings or load_settings()
                self._built = (os.getpid(), build_worker_services(settings, core=self._core))
            return self._built[1]


def wiring_of(app: Any) -> ProcessServices:
    """The app's `ProcessServices`, made on first use (from its in-process core, if any)."""
    wiring = getattr(app, APP_ATTR, None)
    if wiring is None:
        wiring = ProcessServices(core=getattr(app, APP_CORE_ATTR, None))
        setattr(app, APP_ATTR, wiring)
    assert isinstance(wiring, ProcessServices)
    return wiring


def services_of(app: Any) -> WorkerServices:
    """The worker services of the Celery app a task runs in."""
    return wiring_of(app).get()
