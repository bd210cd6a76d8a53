"""The services one process uses, built once from the settings and installed process-wide.

Celery tasks find their services here; the embedded `editqueue run` and tests install their own
(memory coordinator, local store, emulator client) before starting worker threads.
"""

from __future__ import annotations

import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from shared.blobcache import BlobCache
from shared.broker import CeleryEnqueuer, Enqueuer, make_celery
from shared.config import Settings, load_settings
from shared.coordination import Coordinator, MemoryCoordinator
from shared.events import EventSink, NullSink
from shared.gemini import GeminiClient, HttpGeminiClient
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
) -> Services:
    """Real services from the settings; any of them can be replaced (tests, embedded mode)."""
    store = store or open_store(settings)
    coord = coord or coordinator_for(settings)
    enqueuer = enqueuer or CeleryEnqueuer(make_celery(settings))
    return Services(
        settings=settings,
        repo=SessionRepository(store),
        coord=coord,
        enqueuer=enqueuer,
        api=api
        or HttpGeminiClient(
            settings.api_base_url, settings.api_key, timeout_s=settings.api_timeout_s
        ),
        blobs=blob_cache_for(settings, store),
        events=webhook_sink_for(SessionRepository(store), enqueuer),  # for sessions with a webhook
    )


_lock = threading.Lock()
_current: Services | None = None


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
            _current = build_services(load_settings())
        return _current
