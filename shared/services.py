"""The services every role uses, built from the settings: the store (through the session
repository), the coordinator, the enqueuer, the blob cache and the event sink; `index_of` gives
the store's index of sessions.

A producer command builds these and nothing more; a worker adds the Gemini client, the call gate
and the budget ledger on top (`worker.wiring`). Nothing here is a process-wide global: a worker
hangs its services on its Celery app, and `editqueue run` hangs the in-process ones on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from platformdirs import user_cache_dir

from shared.blobcache import BlobCache, ObjectCache
from shared.broker import LANE_FLEX, CeleryEnqueuer, Enqueuer, make_celery
from shared.config import Settings
from shared.coordination import Coordinator, MemoryCoordinator
from shared.events import EventSink, NullSink
from shared.session_index import SessionIndex
from shared.sessions import SessionRepository
from shared.storage import ObjectStore, open_store
from shared.webhook_sink import webhook_sink_for

APP_CORE_ATTR = "editqueue_core"  # a Celery app's in-process services (`editqueue run`)


@dataclass(frozen=True, kw_only=True)
class Services:
    """What a producer command, the HTTP API and a worker all use, passed down explicitly."""

    settings: Settings
    repo: SessionRepository
    coord: Coordinator
    enqueuer: Enqueuer
    blobs: BlobCache
    events: EventSink = field(default_factory=NullSink)


def default_blob_dir() -> Path:
    """One blob cache per machine and user, shared by every process: the user's cache
    directory (`~/.cache/editqueue/blobs` on Linux, honouring XDG_CACHE_HOME)."""
    return Path(user_cache_dir("editqueue", appauthor=False)) / "blobs"


def blob_cache_for(settings: Settings, store: ObjectStore) -> BlobCache:
    """The local blob cache: `blob_cache_dir`, else the machine's default; LRU-capped."""
    directory = Path(settings.blob_cache_dir) if settings.blob_cache_dir else default_blob_dir()
    return BlobCache(store, directory, max_bytes=settings.blob_cache_max_bytes)


def coordinator_for(settings: Settings) -> Coordinator:
    """Redis for a Redis broker; in-process state for `memory://` (one process, no Redis)."""
    if settings.broker_url.startswith("memory://"):
        return MemoryCoordinator()
    from shared.redis_state import RedisCoordinator  # redis-py loads only for Redis users

    return RedisCoordinator(settings.broker_url, settings.sentinel_master)


def enqueuer_for(settings: Settings) -> CeleryEnqueuer:
    """Celery apps for the standard and flex lanes (one in-process lane for `memory://`)."""
    if settings.broker_url.startswith("memory://"):
        return CeleryEnqueuer(make_celery(settings))
    flex = make_celery(settings, name="editqueue-flex", lane=LANE_FLEX)
    return CeleryEnqueuer(make_celery(settings), flex)


def build_services(
    settings: Settings,
    *,
    store: ObjectStore | None = None,
    coord: Coordinator | None = None,
    enqueuer: Enqueuer | None = None,
) -> Services:
    """The core services from the settings; any piece can be given instead (tests, `run`)."""
    store = store or open_store(settings)
    enqueuer = enqueuer or enqueuer_for(settings)
    blobs = blob_cache_for(settings, store)
    objects = ObjectCache(blobs.directory, namespace=settings.store_url)
    repo = SessionRepository(store, objects)
    return Services(
        settings=settings,
        repo=repo,
        coord=coord or coordinator_for(settings),
        enqueuer=enqueuer,
        blobs=blobs,
        events=webhook_sink_for(repo, enqueuer),  # for sessions with a webhook
    )


def index_of(services: Services) -> SessionIndex:
    """The index of the services' store."""
    return SessionIndex(services.repo.store)
