"""The services one process uses, built once from the settings and installed process-wide.

Celery tasks find their services here; the embedded `editqueue run` and tests install their own
(memory coordinator, local store, emulator client) before starting worker threads.
"""

from __future__ import annotations

import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.blobcache import BlobCache
from shared.broker import LANE_FLEX, CeleryEnqueuer, Enqueuer, make_celery
from shared.budget import BudgetLedger, MemoryLedger, RedisLedger
from shared.config import Settings, load_settings
from shared.coordination import Coordinator, MemoryCoordinator
from shared.events import EventSink, NullSink
from shared.gate import CallGate, MemoryGate, OpenGate, RedisGate
from shared.gemini import GeminiClient, HttpGeminiClient
from shared.gemini_batch import BatchApi, HttpBatchApi
from shared.interactions import HttpInteractionsClient, InteractionsClient
from shared.sessions import SessionRepository
from shared.storage import ObjectStore, open_store
from shared.webhook_sink import webhook_sink_for


@dataclass(frozen=True)
class Services:
    """Everything a producer or worker needs, passed down explicitly."""

    settings: Settings
    repo: SessionRepository
    coord: Coordinator
    enqueuer: Enqueuer
    api: GeminiClient
    blobs: BlobCache
    events: EventSink = field(default_factory=NullSink)
    gate: CallGate = field(default_factory=OpenGate)
    ledger: BudgetLedger = field(default_factory=MemoryLedger)
    batch_api: BatchApi | None = None  # the Files and Batch APIs, for batch-tier waves
    interactions: InteractionsClient | None = None  # the Interactions API (transport)


def blob_cache_for(settings: Settings, store: ObjectStore) -> BlobCache:
    """The local blob cache (settings.blob_cache_dir, or a per-process temp dir)."""
    directory = settings.blob_cache_dir or tempfile.mkdtemp(prefix="editqueue-blobs-")
    return BlobCache(store, Path(directory))


def coordinator_for(settings: Settings) -> Coordinator:
    """Redis for a Redis broker; in-process state for `memory://` (one process, no Redis)."""
    if settings.broker_url.startswith("memory://"):
        return MemoryCoordinator()
    from shared.redis_state import RedisCoordinator  # redis-py loads only for Redis users

    return RedisCoordinator(settings.broker_url)


def build_services(
    settings: Settings,
    *,
    store: ObjectStore | None = None,
    coord: Coordinator | None = None,
    enqueuer: Enqueuer | None = None,
    api: GeminiClient | None = None,
    interactions: InteractionsClient | None = None,
) -> Services:
    """Real services from the settings; any of them can be replaced (tests, embedded mode)."""
    store = store or open_store(settings)
    coord = coord or coordinator_for(settings)
    enqueuer = enqueuer or enqueuer_for(settings)
    return Services(
        settings=settings,
        repo=SessionRepository(store),
        coord=coord,
        enqueuer=enqueuer,
        api=api
        or HttpGeminiClient(
            settings.api_base_url, settings.api_key, timeout_s=settings.call_timeout_s
        ),
        blobs=blob_cache_for(settings, store),
        events=webhook_sink_for(SessionRepository(store), enqueuer),  # for sessions with a webhook
        gate=gate_for(settings, coord),
        ledger=ledger_for(settings, coord),
        batch_api=HttpBatchApi(settings.api_base_url, settings.api_key),
        interactions=interactions
        or HttpInteractionsClient(
            settings.api_base_url, settings.api_key, timeout_s=settings.call_timeout_s
        ),
    )


def enqueuer_for(settings: Settings) -> CeleryEnqueuer:
    """Celery apps for the standard and flex lanes (one in-process lane for `memory://`)."""
    if settings.broker_url.startswith("memory://"):
        return CeleryEnqueuer(make_celery(settings))
    flex = make_celery(settings, name="editqueue-flex", lane=LANE_FLEX)
    return CeleryEnqueuer(make_celery(settings), flex)


def _redis_client(coord: Coordinator) -> Any:
    return getattr(coord, "client", None)


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


_lock = threading.Lock()
_current: Services | None = None
_settings: Settings | None = None


def configure(settings: Settings | None) -> None:
    """The settings `current()` builds services from (a worker's checked settings)."""
    global _settings
    with _lock:
        _settings = settings


def install(services: Services | None) -> None:
    """Make `services` the process-wide services (None forgets them)."""
    global _current
    with _lock:
        _current = services


def current() -> Services:
    """The installed services, built from the environment on first use."""
    global _current
    with _lock:
        if _current is None:
            _current = build_services(_settings or load_settings())
        return _current
