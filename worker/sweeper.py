"""The workers' periodic sweep: one at a time (a Redis lease), re-enqueue parked turns when due,
and reconcile from S3 when Redis lost its memory or every `reconcile_interval_s`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable

from shared.config import Settings
from shared.keys import RECONCILE_LEASE, SWEEP_LEASE
from shared.reconcile import reconcile, sweep_parked
from shared.webhook_sink import sweep_outbox, webhook_queue_for
from shared.webhooks import DELIVERY_TIMEOUT_S
from worker.batcher import Batcher
from worker.heartbeat import BEATS_PER_TTL
from worker.recovery import recover_lost
from worker.wiring import WorkerServices

log = logging.getLogger("editqueue.sweeper")


def outbox_grace_s(settings: Settings) -> float:
    """How overdue an outbox entry must be before its message counts as lost: a queued
    delivery runs within its countdown hop, the visibility timeout and one POST."""
    return settings.max_countdown_s + settings.visibility_timeout_s + DELIVERY_TIMEOUT_S


def sweep_once(
    services: WorkerServices, owner: str, now: float, batcher: Batcher | None = None
) -> tuple[int, int]:
    """One sweep if this process wins the lease: (parked turns enqueued, turns reconciled).

    With a batcher, the sweep also follows and sends batch waves (under the batcher's own lease).
    """
    settings = services.settings
    coord = services.coord
    if not coord.acquire_lease(SWEEP_LEASE, owner, settings.sweep_interval_s * 3):
        return (0, 0)
    try:
        reconciled = 0
        # The "recent" lease expires after the reconcile interval, so a full pass runs that often
        # across the fleet; a wiped Redis has no epoch and gets one at once.
        # A fresh owner each time: the lease is re-entrant for its holder, and this one must not be.
        marker = f"{owner}-{now}"
        due_full = coord.acquire_lease(RECONCILE_LEASE, marker, settings.reconcile_interval_s)
        if not coord.has_epoch() or due_full:
            reconciled = reconcile(services, now)
        parked = sweep_parked(services, now)
        queue = webhook_queue_for(services.enqueuer)
        if queue is not None:
            sweep_outbox(services.repo.store, queue, now, outbox_grace_s(settings))
    finally:
        coord.release_lease(SWEEP_LEASE, owner)
    if batcher is not None:
        batcher.run_once(now)
    return (parked, reconciled)


class Sweeper(threading.Thread):
    """A daemon thread in every worker process; the lease makes the fleet sweep one at a time."""

    def __init__(
        self, services: Callable[[], WorkerServices], interval_s: float | None = None
    ) -> None:
        super().__init__(name="editqueue-sweeper", daemon=True)
        self.services = services  # built in the thread's process on first use
        self.owner = f"sweeper-{uuid.uuid4().hex[:12]}"
        self.interval_s = interval_s
        self.stopping = threading.Event()

    def run(self) -> None:
        services = self.services()
        interval = self.interval_s or services.settings.sweep_interval_s
        # Lost turns are looked for more often than the sweep runs: a lapsed heartbeat is
        # found within a third of the lease after it lapsed.
        tick = min(interval, services.settings.lease_ttl_s / BEATS_PER_TTL)
        batcher = Batcher(services, services.batch_api) if services.batch_api else None
        # The first sweep at once: a Redis that lost its memory is reconciled as the worker
        # starts, not an interval later (in the middle of the first batch); the full pass then
        # runs every reconcile interval, fleet-wide (sweep_once).
        next_sweep = time.monotonic()
        while not self.stopping.is_set():
            try:
                recovered = recover_lost(services, self.owner, time.time())
                if recovered:
                    log.info("sweep: %d turn(s) of stopped workers queued again", recovered)
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + interval
                    parked, reconciled = sweep_once(services, self.owner, time.time(), batcher)
                    if parked or reconciled:
                        log.info("sweep: %d parked turn(s) due, %d reconciled", parked, reconciled)
            except Exception:  # the sweep must outlive a Redis or S3 outage
                log.exception("sweep failed; next try in %.0fs", tick)
            self.stopping.wait(tick)

    def stop(self) -> None:
        """Ask the thread to finish after its current pass."""
        self.stopping.set()
