"""Start-up checks: what would make every turn fail (no key, no store, no broker), found first.

A worker runs them before it consumes anything and refuses to start when one fails; `editqueue
init` runs them too (creating the bucket) and prints what it found. Each finding names the
setting to change. Only the configured addresses are contacted.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse, urlunparse

from pydantic import SecretStr

from shared.config import DEFAULT_API_BASE_URL, Settings
from shared.errors import EditQueueError, StartupRefused

# Sent to the bundled emulator when it accepts any key and none is set (it still wants one).
EMULATOR_PLACEHOLDER_KEY = "editqueue-emulator-any-key"
WAIT_POLL_S = 1.0
KEY_SETTING = "GEMINI_API_KEY"
BROKER_SETTING = "EDITQUEUE_BROKER_URL"
STORE_SETTING = "EDITQUEUE_STORE_URL"


@dataclass(frozen=True)
class Finding:
    """One check's outcome: which setting it concerns, whether it passed, and what was seen."""

    setting: str
    ok: bool
    detail: str
    retryable: bool = False  # a service that may still be starting (waited for)

    def line(self) -> str:
        """`ok   SETTING: detail` or `FAIL SETTING: detail`."""
        return f"{'ok  ' if self.ok else 'FAIL'} {self.setting}: {self.detail}"


def safe_url(url: str) -> str:
    """The URL without its password, fit for a message."""
    parts = urlparse(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunparse(parts._replace(netloc=netloc))


KEY_ADVICE = (
    "set it to your Gemini API key, or, to try without one, run `editqueue emulator --port 8765` "
    "and set EDITQUEUE_API_BASE_URL=http://127.0.0.1:8765 (docker-compose: --profile emulator "
    "with EDITQUEUE_API_BASE_URL=http://emulator:8080)"
)


def key_finding(settings: Settings) -> tuple[Finding, Settings]:
    """Is there a key, or an emulator that takes any? Returns the settings the worker must use."""
    key = settings.api_key.get_secret_value().strip() if settings.api_key else ""
    if key:
        return Finding(KEY_SETTING, True, "set (not checked against the API)"), settings
    base = settings.api_base_url.rstrip("/")
    if base == DEFAULT_API_BASE_URL:  # Google's own address: no probe, a key is needed
        detail = f"is empty, so every turn would fail with 403; {KEY_ADVICE}"
        return Finding(KEY_SETTING, False, detail), settings
    from shared.gemini import emulator_identity  # requests loads only here

    identity = emulator_identity(base)
    if identity is None:
        detail = (
            f"is empty and EDITQUEUE_API_BASE_URL={base} did not answer as the bundled emulator "
            f"(GET /emulator/info); {KEY_ADVICE}"
        )
        return Finding(KEY_SETTING, False, detail, retryable=True), settings
    if identity.get("accepts_any_key") is not True:
        detail = f"is empty; the emulator at {base} accepts only its --api-key: set it to that"
        return Finding(KEY_SETTING, False, detail), settings
    detail = f"empty, which is fine: the bundled emulator at {base} accepts any key"
    placeholder = settings.model_copy(update={"api_key": SecretStr(EMULATOR_PLACEHOLDER_KEY)})
    return Finding(KEY_SETTING, True, detail), placeholder


def broker_finding(settings: Settings) -> Finding:
    """Does the broker's Redis answer PING?"""
    url = settings.broker_url
    if url.startswith("memory://"):
        return Finding(BROKER_SETTING, True, "in-process broker (one process only)")
    from shared.redis_state import ping  # redis-py loads only for Redis users

    try:
        ping(url, master=settings.sentinel_master)
    except EditQueueError as exc:
        detail = f"{safe_url(url)} is unreachable ({exc}); start Redis there or fix the URL"
        return Finding(BROKER_SETTING, False, detail, retryable=True)
    except ValueError as exc:
        return Finding(BROKER_SETTING, False, f"{safe_url(url)} is not a Redis URL ({exc})")
    return Finding(BROKER_SETTING, True, f"Redis at {safe_url(url)} answers")


def store_finding(settings: Settings, *, create_bucket: bool = False) -> Finding:
    """Can the store be reached and written (for S3: does the bucket exist, or was it made)?"""
    url = urlparse(settings.store_url)
    if url.scheme == "file":
        return _directory_finding(Path(url.netloc + url.path).expanduser())
    if url.scheme == "memory":
        return Finding(STORE_SETTING, True, "in-memory store (nothing is kept)")
    if url.scheme != "s3":
        return Finding(STORE_SETTING, False, f"{settings.store_url!r}: use s3://bucket/prefix")
    return _bucket_finding(settings, url.netloc, url.path.lstrip("/"), create_bucket)


def _directory_finding(root: Path) -> Finding:
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return Finding(STORE_SETTING, False, f"cannot create {root}: {exc.strerror}")
    if not os.access(root, os.W_OK | os.X_OK):
        return Finding(STORE_SETTING, False, f"{root} is not writable by this user")
    return Finding(STORE_SETTING, True, f"directory {root.resolve()} is writable")


def _bucket_finding(settings: Settings, bucket: str, prefix: str, create: bool) -> Finding:
    from shared.s3 import S3Store  # boto3 loads only for S3 users

    where = settings.s3_endpoint_url or "AWS"
    store = S3Store(bucket, prefix, endpoint_url=settings.s3_endpoint_url)
    try:
        if store.bucket_exists():
            return Finding(STORE_SETTING, True, f"bucket {bucket} at {where} exists")
        if not create:
            detail = f"bucket {bucket} does not exist at {where}; `editqueue init` creates it"
            return Finding(STORE_SETTING, False, detail)
        store.ensure_bucket()
    except EditQueueError as exc:
        detail = (
            f"bucket {bucket} at {where}: {exc} (check EDITQUEUE_S3_ENDPOINT_URL and AWS_* "
            "credentials)"
        )
        return Finding(STORE_SETTING, False, detail, retryable=exc.status is None)
    return Finding(STORE_SETTING, True, f"bucket {bucket} at {where} created")


def run_checks(
    settings: Settings, *, create_bucket: bool = False
) -> tuple[list[Finding], Settings]:
    """Every start-up check (broker, store, key) and the settings a worker would run with."""
    key, effective = key_finding(settings)
    store = store_finding(settings, create_bucket=create_bucket)
    return [broker_finding(settings), store, key], effective


def checked_settings(
    settings: Settings,
    wait_s: float = 0.0,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Settings:
    """The settings a worker runs with, or StartupRefused naming every failed check.

    A service that may still be starting (unreachable Redis, S3 or emulator) is retried for
    `wait_s` seconds; a missing key or bucket is refused at once.
    """
    deadline = clock() + wait_s
    while True:
        findings, effective = run_checks(settings)
        failed = [f for f in findings if not f.ok]
        if not failed:
            return effective
        if not all(f.retryable for f in failed) or clock() >= deadline:
            problems = "; ".join(f"{f.setting} {f.detail}" for f in failed)
            raise StartupRefused(f"worker not started: {problems}")
        sleep(WAIT_POLL_S)
