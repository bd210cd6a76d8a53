"""Key names: the store's object keys (sessions, batches, blobs) and the Redis key prefix.

Every module that names a stored object asks here, so the storage layout of DESIGN.md is spelled
once; `safe_key` and `safe_prefix` are the rules every store (local, memory, S3) enforces.
"""

from __future__ import annotations

import re

SESSIONS = "sessions/"
BATCHES = "batches/"
BLOB_PREFIX = "blobs/sha256/"
REDIS_PREFIX = "eq:"  # every Redis key editqueue writes starts with it
_HEX = re.compile(r"[0-9a-f]{64}")


def safe_key(key: str) -> str:
    """`key` when it is a relative `/`-separated path with no empty, `.` or `..` part."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid object key {key!r}")
    return key


def safe_prefix(prefix: str) -> str:
    """`prefix` when listing under it cannot leave the store's root."""
    if prefix.startswith("/") or any(p in (".", "..") for p in prefix.split("/")):
        raise ValueError(f"invalid key prefix {prefix!r}")
    return prefix


def batch_key(batch_id: str) -> str:
    """Key of a batch's manifest."""
    return f"{BATCHES}{batch_id}/batch.json"


def session_key(sid: str) -> str:
    """Key of `session.json`."""
    return f"{SESSIONS}{sid}/session.json"


def turn_key(sid: str, index: int, name: str) -> str:
    """Key of a per-turn object: `request.json`, `result.json` or `failure.json`."""
    return f"{SESSIONS}{sid}/turns/{index:04d}/{name}"


def cancel_key(sid: str) -> str:
    """Key of the cancel marker."""
    return f"{SESSIONS}{sid}/cancel"


def blob_key(sha256_hex: str) -> str:
    """The store key of a blob: `blobs/sha256/<hex>`; refuses anything but 64 lowercase hex."""
    if not _HEX.fullmatch(sha256_hex):
        raise ValueError(f"not a lowercase hex SHA-256: {sha256_hex!r}")
    return BLOB_PREFIX + sha256_hex
