"""Crash points for fault tests: `EDITQUEUE_FAILPOINT=<name>` kills the process there, once.

The chaos benchmark and the crash tests use these to SIGKILL a worker at an exact step (after a
paid API call, between storing blobs and committing, between committing and chaining). The marker
file makes it fire once per marker, so the worker that takes over finishes the turn. Unset in
production: the check is one attribute read.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from shared.config import Settings

POINTS = ("after_call", "after_blobs", "after_commit")


def failpoint(settings: Settings, name: str) -> None:
    """SIGKILL this process at `name` if the settings ask for it and it has not fired yet."""
    if settings.failpoint != name:
        return
    marker = Path(settings.failpoint_marker or f"/tmp/editqueue-failpoint-{name}")
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)
