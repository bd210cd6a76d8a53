"""The processes `editqueue worker` runs: N Celery workers (threads pool) sharing one blob cache.

A turn spends ~20 s waiting for the API and a few ms of CPU, so the default pool is threads (one
process holds many turns in flight at a fraction of prefork's memory), and one such process per
core uses the machine's cores for the CPU part. Celery options given by the caller pass through
and win over these defaults (`--pool prefork` runs one process unless `--processes` says more).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

from shared import metrics_http
from shared.broker import LANE_FLEX, QUEUE_FLEX, QUEUE_TURNS, make_celery
from shared.config import load_settings
from shared.services import default_blob_dir
from shared.webhooks import QUEUE_WEBHOOKS

WORKER_APP = "worker.app:app"
DEFAULT_THREADS = 16  # turns in flight per process: I/O-bound calls, ~20 MB each at 2K
CRASH_RESTART_AFTER_S = 10.0  # a child that dies after running this long is restarted
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
POOL_FLAGS = ("--pool", "-P")
CONCURRENCY_FLAGS = ("--concurrency", "-c")
NAME_FLAGS = ("--hostname", "-n")
# A worker runs one turn per thread: a BLAS thread pool per process only spins on the cores the
# other turns need (measured: a NumPy least-squares fit of the quality table took 23 ms of CPU in
# its own thread and as much again in OpenBLAS's idle spinning). Set unless the caller set them.
ONE_BLAS_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def option_value(args: Sequence[str], flags: Sequence[str]) -> str | None:
    """The value of the last `--flag V`, `--flag=V` or `-fV` among `args` (None when absent)."""
    found = None
    for i, arg in enumerate(args):
        for flag in flags:
            if arg == flag and i + 1 < len(args):
                found = args[i + 1]
            elif arg.startswith(flag + "=") or (
                len(flag) == 2 and arg.startswith(flag) and arg != flag
            ):
                found = arg[len(flag) :].lstrip("=")
    return found


def default_processes(args: Sequence[str]) -> int:
    """One process per core for the threads pool; one for any other pool (it forks its own)."""
    pool = option_value(args, POOL_FLAGS) or "threads"
    return max(1, os.cpu_count() or 1) if pool == "threads" else 1


def worker_argv(args: Sequence[str], lane: str, index: int = 0, processes: int = 1) -> list[str]:
    """The celery command line of one worker process, with the caller's options last.

    A flex worker consumes only the flex lane (its broker keys and visibility timeout apart).
    With several processes each gets its own node name (`NAME-K@host`).
    """
    queues = QUEUE_FLEX if lane == LANE_FLEX else f"{QUEUE_TURNS},{QUEUE_WEBHOOKS}"
    argv = [sys.executable, "-m", "celery", "-A", WORKER_APP, "worker", "-Q", queues]
    argv += ["--without-gossip", "--without-mingle", "-l", "info"]
    pool = option_value(args, POOL_FLAGS)
    if pool is None:
        argv += ["--pool", "threads"]
    if (pool or "threads") == "threads" and option_value(args, CONCURRENCY_FLAGS) is None:
        argv += ["--concurrency", str(DEFAULT_THREADS)]
    name = option_value(args, NAME_FLAGS)
    if processes > 1:
        node, _, host = (name or "editqueue@%h").partition("@")
        name = f"{node}-{index}@{host or '%h'}"
        args = [*args, "-n", name]
    return [*argv, *args]


def flower_argv(args: Sequence[str]) -> list[str]:
    """`celery -A worker.app:app flower ARGS`: Flower on the fleet's broker (default port 5555)."""
    return [sys.executable, "-m", "celery", "-A", WORKER_APP, "flower", *args]


def serve_fleet_metrics(lane: str) -> None:
    """One `/metrics` for the N processes: they write to one multiprocess directory, this one
    sums it (N servers would fight over EDITQUEUE_METRICS_PORT and each show a part)."""
    settings = load_settings()
    if not settings.metrics_port:
        return
    metrics_http.use_multiprocess(settings)  # the children inherit PROMETHEUS_MULTIPROC_DIR
    metrics_http.serve_worker_metrics(settings, make_celery(settings, lane=lane))
    os.environ["EDITQUEUE_METRICS_PORT"] = "0"  # off in the children: they write, we serve


class Supervisor:
    """The worker processes of one `editqueue worker` command, stopped together."""

    def __init__(self, args: Sequence[str], lane: str, processes: int) -> None:
        self.args = list(args)
        self.lane = lane
        self.processes = processes
        self.children: dict[int, tuple[int, subprocess.Popen[bytes], float]] = {}
        self.stopping = False

    def start(self, index: int) -> None:
        """Start worker process `index`."""
        argv = worker_argv(self.args, self.lane, index, self.processes)
        child = subprocess.Popen(argv)
        self.children[child.pid] = (index, child, time.monotonic())

    def forward(self, signum: int, _frame: FrameType | None = None) -> None:
        """Pass a stop signal to every child (each finishes its turns first on SIGTERM)."""
        self.stopping = True
        for _, child, _ in self.children.values():
            if child.poll() is None:
                child.send_signal(signum)

    def run(self) -> int:
        """Start every process, restart one that crashes after running a while; the exit code.

        A process that refuses to start (exit 2) or stops on its own stops the others, and its
        code is the command's.
        """
        for signum in FORWARDED:
            signal.signal(signum, self.forward)
        for index in range(self.processes):
            self.start(index)
        first: int | None = None
        while self.children:
            pid, status = os.wait()
            if pid not in self.children:
                continue
            index, _, started = self.children.pop(pid)
            metrics_http.mark_dead(pid)  # its in-flight gauge leaves the sum
            code = os.waitstatus_to_exitcode(status)
            crashed = code != 0 and time.monotonic() - started > CRASH_RESTART_AFTER_S
            if not self.stopping and crashed:
                print(
                    f"editqueue worker: process {index} ended ({code}); restarting", file=sys.stderr
                )
                self.start(index)
            elif not self.stopping:
                first = code
                self.forward(signal.SIGTERM)
            elif first is None and code > 0:
                first = code
        return 0 if first is None else (1 if first < 0 else first)


def run_workers(args: Sequence[str], lane: str, processes: int | None) -> None:
    """Run the worker processes: exec celery for one, supervise several; never returns."""
    count = processes if processes is not None else default_processes(args)
    os.environ["EDITQUEUE_LANE"] = lane  # the worker app checks this lane's timeouts at start
    for name, value in ONE_BLAS_THREAD.items():
        os.environ.setdefault(name, value)  # the children import NumPy after this
    if count == 1:
        argv = worker_argv(args, lane)
        os.execv(argv[0], argv)
    if not os.environ.get("EDITQUEUE_BLOB_CACHE_DIR"):  # one machine, one cache for all of them
        os.environ["EDITQUEUE_BLOB_CACHE_DIR"] = str(default_blob_dir())
    serve_fleet_metrics(lane)
    sys.exit(Supervisor(args, lane, count).run())
