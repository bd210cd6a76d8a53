"""The quality table's numbers, measured off the chain's path (issue 13's "cheap by design").

Measuring a transition decodes two images and fits a homography: tens of milliseconds of CPU that
would otherwise sit between turn n's answer and turn n+1's call. So when turn n+1 is already
requested, turn n commits without its numbers (`metrics_deferred`) and chains at once; turn n+1
measures turn n on a background thread while it waits for its own answer (seconds) and commits
them as its `previous_metrics`. The last turn of a session (nothing waits on it) measures itself
before it commits. When an attempt of turn n+1 ends without committing (it failed, was
cancelled, parked or requeued, in a wave too), it stores turn n's numbers in
`turns/n/quality.json` (once: later attempts see the file in their listing and measure nothing;
the attempt that creates it counts the numbers and verdicts in the operator's metrics).
`SessionSnapshot.metrics_of` finds them in whichever place.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from shared.blobcache import BlobCache
from shared.services import Services
from shared.sessions import SessionSnapshot
from worker.observe import quality_kept
from worker.results import quality_metrics

# Per process: a measurement is mostly OpenCV, NumPy and libjpeg, which release the GIL.
MEASURING_THREADS = 2
log = logging.getLogger("editqueue.turn")
_pool: list[ThreadPoolExecutor] = []
_pool_lock = threading.Lock()


def unmeasured(snap: SessionSnapshot, index: int) -> bool:
    """Turn n's result left its numbers to turn n+1 and no `quality.json` holds them yet."""
    result = snap.results.get(index)
    return result is not None and result.metrics_deferred and index not in snap.quality


def measure(blobs: BlobCache, snap: SessionSnapshot, index: int) -> dict[str, float]:
    """Turn n's numbers from its stored image and turn n-1's ({} when they cannot be had: a
    quality signal never fails the paid-for turn that measures it)."""
    try:
        result, request = snap.results[index], snap.requests[index]
    except KeyError:
        log.warning("turn %s/%d: nothing to measure", snap.record.session_id, index)
        return {}
    return quality_metrics(blobs, snap.results.get(index - 1), request, result.image.blob)


def numbers(
    blobs: BlobCache,
    snap: SessionSnapshot,
    index: int,
    measuring: Future[dict[str, float]] | None = None,
) -> dict[str, float] | None:
    """Unmeasured turn n's numbers: the background measurement's (`measure_later`), else
    measured now; None when turn n is not waiting to be measured."""
    if measuring is not None:
        return measuring.result()
    return measure(blobs, snap, index) if unmeasured(snap, index) else None


def keep(
    services: Services,
    snap: SessionSnapshot,
    index: int,
    measuring: Future[dict[str, float]] | None = None,
) -> None:
    """Store unmeasured turn n's numbers in `turns/n/quality.json`: turn n+1's attempt ends
    without a result to carry them. The attempt that creates the file counts them for the
    operator (`quality_kept`, judged by the operator's thresholds as a commit is); one that
    finds it there does not. Never raises: the attempt's own outcome is what matters."""
    sid = snap.record.session_id
    try:
        found = numbers(services.blobs, snap, index, measuring)
        if found is not None and services.repo.put_quality(sid, index, found):
            quality_kept(snap, index, found, services.settings.quality)
    except Exception:
        log.warning("session %s: quality of turn %d not kept", sid, index, exc_info=True)


def _executor() -> ThreadPoolExecutor:
    with _pool_lock:
        if not _pool:
            _pool.append(ThreadPoolExecutor(MEASURING_THREADS, thread_name_prefix="measuring"))
        return _pool[0]


def measure_later(
    blobs: BlobCache, snap: SessionSnapshot, index: int
) -> Future[dict[str, float]] | None:
    """Start measuring turn n in the background; None when it is not waiting to be measured."""
    if not unmeasured(snap, index):
        return None
    return _executor().submit(measure, blobs, snap, index)
