"""Many small store round trips at once: a thread pool with an optional progress bar.

A conditional put to S3 takes a few milliseconds, almost all of it waiting on the network, so a
batch of 1,000 sessions (6,000 objects) is written by threads, not one object after another.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from typing import TypeVar

from tqdm import tqdm

# The S3 client keeps 32 connections (shared/s3.py MAX_POOL_CONNECTIONS): more threads would wait.
STORE_THREADS = 32

T = TypeVar("T")
R = TypeVar("R")


def parallel_map(
    fn: Callable[[T], R],
    items: Sequence[T],
    *,
    threads: int = STORE_THREADS,
    desc: str | None = None,
    unit: str = "session",
) -> list[R]:
    """`fn` over `items` on a thread pool, results in order; a bar on stderr when `desc` is set.

    The first error cancels every call that has not started and is raised once the running
    ones have finished.
    """
    if len(items) <= 1 or threads <= 1:
        return [fn(item) for item in items]
    results: dict[int, R] = {}
    bar = tqdm(total=len(items), desc=desc, unit=unit, file=sys.stderr, disable=desc is None)
    with bar, ThreadPoolExecutor(max_workers=min(threads, len(items))) as pool:
        futures: dict[Future[R], int] = {pool.submit(fn, item): i for i, item in enumerate(items)}
        try:
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.update()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return [results[i] for i in range(len(items))]
