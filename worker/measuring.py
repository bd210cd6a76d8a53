"""The quality table's numbers, measured off the chain's path (issue 13's "cheap by design").

Measuring a transition decodes two images and fits a homography: tens of milliseconds of CPU that
would otherwise sit between turn n's answer and turn n+1's call. So when turn n+1 is already
requested, turn n commits without its numbers (`metrics_deferred`) and chains at once; turn n+1
measures turn n on a background thread while it waits for its own answer (seconds) and commits
them as its `previous_metrics`. The last turn of a session (nothing waits on it) measures itself
before it commits. When turn n+1 ends without an answer (it failed, or the session was
cancelled), it stores turn n's numbers in `turns/n/quality.json` instead.
`SessionSnapshot.metrics_of` finds them in whichever place.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

from shared.blobcache import BlobCache
from shared.sessions import SessionSnapshot
from worker.results import quality_metrics

# Per process: a measurement is mostly OpenCV, NumPy and libjpeg, which release the GIL.
MEASURING_THREADS = 2
_pool: list[ThreadPoolExecutor] = []
_pool_lock = threading.Lock()


def deferred(snap: SessionSnapshot, index: int) -> bool:
    """Turn n's committed result left its numbers to turn n+1."""
    result = snap.results.get(index)
    return result is not None and result.metrics_deferred


def measure(blobs: BlobCache, snap: SessionSnapshot, index: int) -> dict[str, float]:
    """Turn n's numbers from its stored image and turn n-1's ({} when they cannot be had)."""
    result, request = snap.results[index], snap.requests[index]
    return quality_metrics(blobs, snap.results.get(index - 1), request, None, result.image.blob)


def _executor() -> ThreadPoolExecutor:
    with _pool_lock:
        if not _pool:
            _pool.append(ThreadPoolExecutor(MEASURING_THREADS, thread_name_prefix="measuring"))
        return _pool[0]


def measure_later(
    blobs: BlobCache, snap: SessionSnapshot, index: int
) -> Future[dict[str, float]] | None:
    """Start measuring deferred turn n in the background; None when it is not deferred."""
    if not deferred(snap, index):
        return None
    return _executor().submit(measure, blobs, snap, index)
