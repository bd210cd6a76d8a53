"""`editqueue run`: the whole system in one process, with no Redis, no S3 and no API key.

The store is a directory under the output folder, the broker is Celery's `memory://` transport,
coordination is in memory, and the Gemini API is the emulator on a free local port (unless
GEMINI_API_KEY is set). The real turn task runs in an in-process Celery worker (threads pool),
loaded by its dotted name: the producer never imports the worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from celery import Celery
from celery.contrib.testing.worker import start_worker
from pydantic import SecretStr

from producer import sessions, submission
from producer.limits import Limits
from producer.progress import WaitResult, wait_for
from producer.specs import LoadedSpec, load_specs
from shared.broker import CeleryEnqueuer, make_celery
from shared.config import Settings
from shared.coordination import MemoryCoordinator
from shared.errors import InvalidSpec
from shared.models import SessionState, Tier
from shared.services import APP_CORE_ATTR, Services, build_services
from shared.status_document import SessionStatus

WORKER_TASKS_MODULE = "worker.tasks"
EMBEDDED_BROKER_URL = "memory://"
EMBEDDED_CONCURRENCY = 4
EMBEDDED_POLLING_INTERVAL_S = 0.01
EMBEDDED_POLL_S = 0.2
EMULATOR_LATENCY_S = 0.05
EMULATOR_KEY = "embedded-emulator"  # the emulator accepts any non-empty key
WORKER_SHUTDOWN_MARGIN_S = 15.0


@dataclass(frozen=True)
class RunResult:
    """What `editqueue run` did: each session's final status and report page."""

    statuses: list[SessionStatus]
    reports: list[Path]
    stalled: bool

    @property
    def exit_code(self) -> int:
        """0 when every session completed, 1 otherwise."""
        ok = not self.stalled and all(s.state is SessionState.COMPLETED for s in self.statuses)
        return 0 if ok else 1


def embedded_settings(base: Settings, out_dir: Path, api_url: str | None) -> Settings:
    """The environment's settings with the embedded store, broker and (maybe) emulator."""
    update: dict[str, object] = {
        "store_url": f"file://{(out_dir / 'store').resolve()}",
        "broker_url": EMBEDDED_BROKER_URL,
    }
    if api_url is not None:
        update.update(api_base_url=api_url, api_key=SecretStr(EMULATOR_KEY))
    return base.model_copy(update=update)


def _celery_app(settings: Settings) -> Celery:
    app = make_celery(settings, name="editqueue-embedded")
    options = dict(app.conf.broker_transport_options)
    options["polling_interval"] = EMBEDDED_POLLING_INTERVAL_S
    app.conf.broker_transport_options = options
    app.loader.import_module(WORKER_TASKS_MODULE)  # registers the shared task by name
    return app


@contextmanager
def _emulator(base: Settings) -> Iterator[str | None]:
    if base.api_key is not None:
        yield None  # a key is set: use the real API
        return
    from emulator import EmulatorConfig, start_emulator

    running = start_emulator(EmulatorConfig(port=0, latency_s=EMULATOR_LATENCY_S))
    try:
        yield running.url
    finally:
        running.stop()


@contextmanager
def embedded_services(base: Settings, out_dir: Path) -> Iterator[Services]:
    """Services and a running in-process worker; everything stops when the block ends.

    The core services (local store, in-memory coordinator, the in-process broker) are hung on
    the worker's Celery app, and its tasks add the worker's pieces (the Gemini client pointed at
    the emulator, gate, ledger) to them in this same process.
    """
    with ExitStack() as stack:
        api_url = stack.enter_context(_emulator(base))
        settings = embedded_settings(base, out_dir, api_url)
        app = _celery_app(settings)
        services = build_services(settings, coord=MemoryCoordinator(), enqueuer=CeleryEnqueuer(app))
        setattr(app, APP_CORE_ATTR, services)
        stack.enter_context(
            start_worker(
                app,
                pool="threads",
                concurrency=EMBEDDED_CONCURRENCY,
                perform_ping_check=False,
                shutdown_timeout=settings.api_timeout_s + WORKER_SHUTDOWN_MARGIN_S,
            )
        )
        yield services


def report_dirs(out_dir: Path, sids: list[str]) -> list[Path]:
    """One session reports straight into `out_dir`; several get a folder each."""
    return [out_dir] if len(sids) == 1 else [out_dir / sid for sid in sids]


def idle_timeout_s(settings: Settings) -> float:
    """How long no turn may move before the run gives up (every attempt timing out, backed off)."""
    return (settings.api_timeout_s + settings.max_countdown_s) * settings.max_attempts + 60


def run_specs(
    base: Settings, items: list[LoadedSpec], out_dir: Path, *, show_progress: bool = True
) -> RunResult:
    """Submit `items`, run them to the end in-process, and write each session's report."""
    batch = [item.source for item in items if item.spec.tier is Tier.BATCH]
    if batch:
        raise InvalidSpec(
            f"{batch[0]}: tier: batch runs in waves sent by the workers' sweep, which "
            "`editqueue run` does not have; use `editqueue submit SPEC --tier batch` with "
            "`editqueue worker`, or tier standard or flex here"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    with embedded_services(base, out_dir) as services:
        sids = submission.submit_many(services, items)
        waited: WaitResult = wait_for(
            lambda sid: sessions.session_status(services, sid),
            sids,
            poll_s=EMBEDDED_POLL_S,
            idle_timeout_s=idle_timeout_s(services.settings),
            show=show_progress,
        )
        reports = [
            sessions.export(services, sid, folder)
            for sid, folder in zip(sids, report_dirs(out_dir, sids), strict=True)
        ]
    return RunResult(waited.statuses, reports, waited.stalled)


def run_file(
    base: Settings, spec_path: Path, out_dir: Path, *, show_progress: bool = True
) -> RunResult:
    """`editqueue run SPEC --out DIR`: load (validating everything first), then run."""
    items = load_specs(spec_path, default_model=base.model, limits=Limits.from_settings(base))
    return run_specs(base, items, out_dir, show_progress=show_progress)
