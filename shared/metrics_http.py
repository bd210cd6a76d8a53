"""Serving `/metrics`: one port per process group, correct whichever way the processes fork.

A prefork worker's children each hold their own counters; each starting its own server would
leave one child bound to the port and the others unseen (undercounting by the pool size). So a
worker always runs prometheus_client in multiprocess mode: every process writes its values to
files in one directory, and the one server in the main process adds them up.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, multiprocess, start_http_server, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from shared.broker import LANE_FLEX, QUEUE_FLEX, QUEUE_TURNS, queue_depths
from shared.config import Settings
from shared.webhooks import QUEUE_WEBHOOKS

log = logging.getLogger("editqueue.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own variable
_directory: list[Path] = []  # set by use_multiprocess; forked children inherit it


def use_multiprocess(settings: Settings) -> Path:
    """Switch this process (and the children it forks) to multiprocess mode; empty the directory.

    Call once in the process group's main process before any metric is created. The directory
    is `PROMETHEUS_MULTIPROC_DIR` or a fresh temporary one; files of an earlier run are removed,
    or their counts would be added to this run's.
    """
    directory = Path(settings.metrics_dir or tempfile.mkdtemp(prefix="editqueue-metrics-"))
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(directory)  # children and prometheus_client read it
    # prometheus_client picks its value class at import; pick again now the directory is set.
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    _directory[:] = [directory]
    return directory


def multiprocess_registry() -> CollectorRegistry:
    """A registry that adds up every process's files."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


class QueueDepthCollector(Collector):
    """`editqueue_queue_depth{queue}`, read from the broker at scrape time."""

    def __init__(self, depths: Callable[[], dict[str, int]]) -> None:
        self._depths = depths

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "editqueue_queue_depth",
            "Messages waiting in the broker (all priorities)",
            labels=["queue"],
        )
        try:
            for queue, depth in self._depths().items():
                family.add_metric([queue], depth)
        except Exception:  # a broker hiccup must not fail the whole scrape
            log.warning("could not read the queue depth", exc_info=True)
        yield family


def serve(port: int, depths: Callable[[], dict[str, int]] | None = None) -> Any:
    """Serve the process group's `/metrics` on `port` in a daemon thread; returns the server.

    Every role that serves metrics (each worker process group, `editqueue api`) runs in
    multiprocess mode (`use_multiprocess` first), so one code path sums whatever forked.
    With `depths`, the queue depth is read from the broker at each scrape.
    """
    registry = multiprocess_registry()
    if depths is not None:
        registry.register(QueueDepthCollector(depths))
    server, _thread = start_http_server(port, registry=registry)
    log.info("serving /metrics on port %d (multiprocess dir %s)", port, _directory[0])
    return server


def join_multiprocess(directory: Path) -> None:
    """Use a directory a parent set up (and serves): this process writes to it, never empties it."""
    _directory[:] = [directory]


def serve_worker_metrics(settings: Settings, app: Any) -> Any:
    """`/metrics` of a worker process group, with the depth of the queues its lane consumes."""
    queues = [QUEUE_FLEX] if settings.lane == LANE_FLEX else [QUEUE_TURNS, QUEUE_WEBHOOKS]
    assert settings.metrics_port
    return serve(settings.metrics_port, lambda: queue_depths(app, queues))


def mark_dead(pid: int) -> None:
    """Drop a finished process's live gauges (in-flight calls) from the sums."""
    if _directory:
        multiprocess.mark_process_dead(pid, str(_directory[0]))  # type: ignore[no-untyped-call]
