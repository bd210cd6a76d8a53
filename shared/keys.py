"""Key names: every object key in the store and every Redis key editqueue writes, spelled once.

The store (DESIGN.md's storage layout):

    sessions/{sid}/session.json                      the spec (written once)
    sessions/{sid}/cancel                            the cancel marker
    sessions/{sid}/turns/{nnnn}/request.json         also result.json and quality.json (written
                                                     once), failure.json, parked.json, parks.json,
                                                     lost-{attempt}.json, attempts/{rev}-{nnn}.json
    sessions/{sid}/events/{event_id}.json            an event to deliver (and .delivery.json)
    batches/{batch_id}/batch.json                    blobs/sha256/{hex}
    index/open/{sid}   index/summaries/{sid}.json    the session index
    waves/{wave_id}/wave.json   waves/open/{wave_id} batch waves
    outbox/{sid}/{event_id}.json                     an unfinished webhook delivery

Redis, every key under `eq:` (the flex lane's Celery keys under `eqflex:`): `live:{sid}` and
`beat:{sid}` (hashes by turn), `running`, `parked`, `batchdue`, `sessions`, `epoch`,
`lease:{name}`, `idem:{hash}`, `inflight`, `rate:{quota}`, `budget:{scope}` and its `:held`.

Pure: no I/O, nothing of ours imported. `safe_key` and `safe_prefix` are the rules every store
(local, memory, S3) enforces.
"""

from __future__ import annotations

import re

SESSIONS = "sessions/"
BATCHES = "batches/"
BLOB_PREFIX = "blobs/sha256/"
INDEX_OPEN = "index/open/"
INDEX_SUMMARIES = "index/summaries/"
WAVES = "waves/"
WAVES_OPEN = "waves/open/"
OUTBOX = "outbox/"
# A session's objects, and a turn's (under `turns/{nnnn}/`).
SESSION_JSON = "session.json"
CANCEL = "cancel"
REQUEST = "request.json"
RESULT = "result.json"
FAILURE = "failure.json"
PARKED = "parked.json"
PARKS = "parks.json"
QUALITY = "quality.json"  # a deferred turn's quality numbers (written once)
ATTEMPTS = "attempts/"
LOST = "lost-"
# Key endings never rewritten (DESIGN.md).
WRITTEN_ONCE = (f"/{SESSION_JSON}", f"/{RESULT}", f"/{QUALITY}")
_JSON = ".json"
_WAVE_JSON = "/wave.json"

REDIS_PREFIX = "eq:"  # every Redis key editqueue writes starts with it
FLEX_REDIS_PREFIX = "eqflex:"  # the flex lane's Celery keys (its own unacked index)
RUNNING_KEY = f"{REDIS_PREFIX}running"  # turns by heartbeat deadline
PARKED_KEY = f"{REDIS_PREFIX}parked"  # parked turns by due time
BATCH_DUE_KEY = f"{REDIS_PREFIX}batchdue"  # batch-tier turns waiting for a wave
SESSIONS_KEY = f"{REDIS_PREFIX}sessions"  # session ids with live turns
EPOCH_KEY = f"{REDIS_PREFIX}epoch"  # absent after a wipe: reconcile rebuilds
INFLIGHT_KEY = f"{REDIS_PREFIX}inflight"  # the call gate's slots
# Lease names (each the Redis key `lease_key(name)`).
SWEEP_LEASE = "sweep"
RECONCILE_LEASE = "reconcile-recent"
BATCHER_LEASE = "batcher"
# Budget scopes (each the Redis keys `budget_keys(scope)`).
BATCH_SCOPE = "batch:"
SESSION_SCOPE = "session:"
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


def session_prefix(sid: str) -> str:
    """The prefix of every object of a session."""
    return f"{SESSIONS}{sid}/"


def session_key(sid: str) -> str:
    """Key of `session.json`."""
    return session_prefix(sid) + SESSION_JSON


def session_id_of(key: str) -> str | None:
    """The session id of a `session.json` key listed under `sessions/`, else None."""
    ending = f"/{SESSION_JSON}"
    return key[len(SESSIONS) : -len(ending)] if key.endswith(ending) else None


def turn_key(sid: str, index: int, name: str) -> str:
    """Key of a per-turn object: `REQUEST`, `RESULT`, `FAILURE`, `PARKED`, `PARKS` ..."""
    return f"{session_prefix(sid)}turns/{index:04d}/{name}"


def turn_object(rest: str) -> tuple[int, str] | None:
    """(turn index, object name) of a key's part after `session_prefix`, or None."""
    parts = rest.split("/")
    if len(parts) < 3 or parts[0] != "turns" or not parts[1].isdigit():
        return None
    return int(parts[1]), "/".join(parts[2:])


def attempt_name(revision: int, attempt: int) -> str:
    """A turn's object name of an uncommitted API attempt."""
    return f"{ATTEMPTS}{revision}-{attempt:03d}{_JSON}"


def lost_name(attempt: int) -> str:
    """A turn's object name of a call lost with its worker."""
    return f"{LOST}{attempt}{_JSON}"


def cancel_key(sid: str) -> str:
    """Key of the cancel marker."""
    return session_prefix(sid) + CANCEL


def event_key(sid: str, event_id: str) -> str:
    """Where an event waiting for delivery is stored (written once; dedupes re-emissions)."""
    return f"{session_prefix(sid)}events/{event_id}{_JSON}"


def delivery_key(sid: str, event_id: str) -> str:
    """Where the final outcome of an event's delivery is recorded (delivered or gave up)."""
    return f"{session_prefix(sid)}events/{event_id}.delivery{_JSON}"


def outbox_key(sid: str, event_id: str) -> str:
    """Where an unfinished event's outbox entry lives."""
    return f"{OUTBOX}{sid}/{event_id}{_JSON}"


def blob_key(sha256_hex: str) -> str:
    """The store key of a blob: `blobs/sha256/<hex>`; refuses anything but 64 lowercase hex."""
    if not _HEX.fullmatch(sha256_hex):
        raise ValueError(f"not a lowercase hex SHA-256: {sha256_hex!r}")
    return BLOB_PREFIX + sha256_hex


def blob_sha256_of(key: str) -> str | None:
    """The hex SHA-256 that a blob's key names; None for any other key."""
    name = key[len(BLOB_PREFIX) :] if key.startswith(BLOB_PREFIX) else ""
    return name if _HEX.fullmatch(name) else None


def open_key(sid: str) -> str:
    """The marker of a session that may still have work to do."""
    return f"{INDEX_OPEN}{sid}"


def summary_key(sid: str) -> str:
    """A session's summary row."""
    return f"{INDEX_SUMMARIES}{sid}{_JSON}"


def summary_id_of(key: str) -> str | None:
    """The session id of a key listed under `INDEX_SUMMARIES`, else None."""
    return key[len(INDEX_SUMMARIES) : -len(_JSON)] if key.endswith(_JSON) else None


def wave_key(wave_id: str) -> str:
    """Key of a wave's record."""
    return f"{WAVES}{wave_id}{_WAVE_JSON}"


def wave_open_key(wave_id: str) -> str:
    """The marker of a wave not yet done."""
    return f"{WAVES_OPEN}{wave_id}"


def wave_id_of(key: str) -> str | None:
    """The wave id of a wave record's key listed under `WAVES`, else None."""
    if not key.endswith(_WAVE_JSON) or key.startswith(WAVES_OPEN):
        return None
    return key[len(WAVES) : -len(_WAVE_JSON)]


def live_key(sid: str) -> str:
    """Redis hash of a session's live turns (queued, running, retrying), by turn index."""
    return f"{REDIS_PREFIX}live:{sid}"


def beat_key(sid: str) -> str:
    """Redis hash of a session's heartbeat deadlines, by turn index."""
    return f"{REDIS_PREFIX}beat:{sid}"


def lease_key(name: str) -> str:
    """Redis key of a lease (`turn_lease`, `webhook_lease`, `SWEEP_LEASE` ...)."""
    return f"{REDIS_PREFIX}lease:{name}"


def turn_lease(sid: str, index: int) -> str:
    """The lease name of turn n of a session."""
    return f"{sid}:{index}"


def webhook_lease(event_id: str) -> str:
    """The lease name of an event's delivery."""
    return f"webhook:{event_id}"


def idempotency_key(key: str) -> str:
    """Redis key of an HTTP idempotency entry."""
    return f"{REDIS_PREFIX}idem:{key}"


def rate_key(identity: str, amount: int, per_s: int) -> str:
    """Redis key of a rate quota's window (one per quota: a changed limit starts its own)."""
    return f"{REDIS_PREFIX}rate:{identity}:{amount}/{per_s}s"


def budget_keys(scope: str) -> list[str]:
    """Redis keys of a budget scope: its spent total and its holds."""
    return [f"{REDIS_PREFIX}budget:{scope}", f"{REDIS_PREFIX}budget:{scope}:held"]


def batch_scope(batch_id: str) -> str:
    """The budget scope of a batch."""
    return f"{BATCH_SCOPE}{batch_id}"


def session_scope(sid: str) -> str:
    """The budget scope of a session."""
    return f"{SESSION_SCOPE}{sid}"
