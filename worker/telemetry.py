"""A worker process group's telemetry, wired to Celery's signals for every pool layout.

- `/metrics`: the main process empties the multiprocess directory and serves the sum of every
  process's files on EDITQUEUE_METRICS_PORT (`celeryd_init`, before any pool child forks); a
  pool child that exits has its live gauges dropped (`worker_process_shutdown`).
- OpenTelemetry: the SDK's exporter threads do not survive a fork, so a prefork pool starts it in
  each child (`worker_process_init`, as opentelemetry-instrumentation-celery documents); solo
  sends that signal in the main process; threads (and other in-process pools) start it at
  `worker_init`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from celery.signals import celeryd_init, worker_init, worker_process_init, worker_process_shutdown

from shared import metrics_http, tracing
from shared.config import Settings

SERVICE = "editqueue-worker"
_settings: list[Settings] = []
_traced_pids: set[int] = set()


def install(settings: Settings) -> None:
    """Use `settings` for the signal handlers below (called by `worker.app`)."""
    _settings[:] = [settings]


def _forks(pool_cls: Any) -> bool:
    from celery import concurrency
    from celery.concurrency.prefork import TaskPool as PreforkPool
    from celery.concurrency.solo import TaskPool as SoloPool

    cls = concurrency.get_implementation(pool_cls)
    # prefork children, and solo in the main process, send worker_process_init themselves
    return isinstance(cls, type) and issubclass(cls, PreforkPool | SoloPool)


def start_tracing() -> None:
    """Start OpenTelemetry once in this process, if configured."""
    if not _settings or os.getpid() in _traced_pids:
        return
    _traced_pids.add(os.getpid())
    if tracing.setup(_settings[0], SERVICE):
        tracing.instrument_celery()


@celeryd_init.connect  # type: ignore[untyped-decorator]
def _serve_metrics(instance: Any = None, **_: Any) -> None:
    if not _settings:
        return
    settings = _settings[0]
    if settings.metrics_port and instance is not None:
        metrics_http.use_multiprocess(settings)
        metrics_http.serve_worker_metrics(settings, instance.app)
    elif settings.metrics_dir:  # one of `editqueue worker --processes N`: the parent serves
        metrics_http.join_multiprocess(Path(settings.metrics_dir))


@worker_init.connect  # type: ignore[untyped-decorator]
def _trace_in_process_pools(sender: Any = None, **_: Any) -> None:
    if sender is not None and not _forks(sender.pool_cls):
        start_tracing()


@worker_process_init.connect  # type: ignore[untyped-decorator]
def _trace_pool_child(**_: Any) -> None:
    start_tracing()


@worker_process_shutdown.connect  # type: ignore[untyped-decorator]
def _forget_child(pid: int | None = None, **_: Any) -> None:
    metrics_http.mark_dead(pid or os.getpid())
