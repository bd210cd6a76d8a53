"""The Celery app the `editqueue worker` command runs (`celery -A worker.app:app worker`)."""

from __future__ import annotations

import gc
import logging
import sys
from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_init, worker_ready, worker_shutdown

from shared import metrics, tracing
from shared.broker import make_celery
from shared.config import Settings, load_settings
from shared.errors import StartupRefused
from shared.preflight import checked_settings
from worker import telemetry
from worker.timeouts import check_timeouts
from worker.wiring import services_of, wiring_of


def create_app(settings: Settings) -> Celery:
    """The worker's Celery app, with the turn and webhook tasks registered."""
    check_timeouts(settings)
    app = make_celery(settings, name="editqueue-worker", lane=settings.lane)
    app.conf.update(include=["worker.tasks", "worker.webhooks"])
    wiring_of(app).configure(settings)  # each process builds its services on first use
    import worker.tasks
    import worker.webhooks  # noqa: F401  (importing registers both shared tasks on this app)

    return app


_sweepers: list[Any] = []


@worker_process_init.connect  # type: ignore[untyped-decorator]
def warm(**_: Any) -> None:
    """Before the first turn: build the services and the metric families (so the first turn
    does not pay for them), then move every object made so far out of the garbage collector's
    sight (`gc.freeze`): Celery, botocore and OpenCV leave ~10^5 long-lived objects that each
    full collection would otherwise walk again. Prefork children run this at their start."""
    services_of(app)
    metrics.families()
    gc.freeze()


@worker_ready.connect  # type: ignore[untyped-decorator]
def _start_sweeper(**_: Any) -> None:
    from worker.sweeper import Sweeper

    try:
        warm()  # threads and solo pools: the turns run in this process
    except Exception:  # the first turn builds what failed here; the sweeper must start anyway
        logging.getLogger("editqueue.worker").warning("warm-up failed", exc_info=True)

    sweeper = Sweeper(lambda: services_of(app))
    sweeper.start()
    _sweepers.append(sweeper)


@worker_shutdown.connect  # type: ignore[untyped-decorator]
def _stop_sweeper(**_: Any) -> None:
    for sweeper in _sweepers:
        sweeper.stop()


@worker_init.connect  # type: ignore[untyped-decorator]
def _check_before_consuming(sender: Any = None, **_: Any) -> None:
    """Refuse to start (exit 2, naming the setting) when every turn would fail.

    Runs in the worker's main process before the pool starts and before anything is consumed;
    the checked settings (e.g. the emulator's placeholder key) are what every task then uses.
    """
    if getattr(sender, "app", None) is not app:
        return  # another app in this process (tests)
    settings = load_settings()
    try:
        checked = checked_settings(settings, settings.startup_wait_s)
    except StartupRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    wiring_of(app).configure(checked)


def _app() -> Celery:
    try:
        settings = load_settings()
        tracing.configure_logs(settings)
        telemetry.install(settings)
        return create_app(settings)
    except ValueError as exc:  # a setting out of range: refused like the start-up checks
        print(f"error: worker not started: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


app = _app()
