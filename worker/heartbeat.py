"""Heartbeats: while a turn runs, its lease is renewed every third of `lease_ttl_s`.

One daemon thread per process renews every turn the process is running (the threads pool runs
many). A worker that dies stops renewing, so its turn's lease lapses within `lease_ttl_s` and the
sweep puts the turn back (`worker/recovery.py`) instead of waiting for the broker's visibility
timeout; the broker's own redelivery, later, finds the turn committed or leased and is absorbed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from shared.coordination import Coordinator
from shared.errors import EditQueueError
from shared.keys import turn_lease

log = logging.getLogger("editqueue.heartbeat")
BEATS_PER_TTL = 3


class Heartbeat:
    """Renews the leases of the turns this process holds."""

    def __init__(self, coord: Coordinator, ttl_s: float) -> None:
        self.coord = coord
        self.ttl_s = ttl_s
        self._held: dict[tuple[str, int], str] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @contextmanager
    def holding(self, sid: str, index: int, owner: str) -> Iterator[None]:
        """Keep turn n's lease (taken by `owner`) alive while the block runs."""
        self._beat(sid, index, owner)
        with self._lock:
            self._held[(sid, index)] = owner
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._held.pop((sid, index), None)
            try:
                self.coord.drop_running(sid, index)
            except EditQueueError:
                log.warning("turn %s/%d: could not drop its heartbeat", sid, index)

    def _beat(self, sid: str, index: int, owner: str) -> None:
        if self.coord.acquire_lease(turn_lease(sid, index), owner, self.ttl_s):
            self.coord.beat(sid, index, time.time() + self.ttl_s)
        else:
            log.warning("turn %s/%d: lease taken over (this worker stalled?)", sid, index)

    def _run(self) -> None:
        while True:
            time.sleep(self.ttl_s / BEATS_PER_TTL)
            with self._lock:
                held = list(self._held.items())
            for (sid, index), owner in held:
                try:
                    self._beat(sid, index, owner)
                except EditQueueError as exc:  # Redis away: the next beat tries again
                    log.warning("turn %s/%d: heartbeat failed: %s", sid, index, exc)


_beats: dict[int, Heartbeat] = {}
_beats_lock = threading.Lock()


def heartbeat_for(coord: Coordinator, ttl_s: float) -> Heartbeat:
    """The process's heartbeat for this coordinator."""
    with _beats_lock:
        beat = _beats.get(id(coord))
        if beat is None or beat.coord is not coord:
            beat = _beats[id(coord)] = Heartbeat(coord, ttl_s)
        return beat
