"""The session layout in the object store: typed reads and writes of specs, turns and markers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

from shared.blobcache import ObjectCache
from shared.errors import ObjectNotFound, UnknownSession
from shared.keys import (
    ATTEMPTS,
    CANCEL,
    FAILURE,
    LOST,
    PARKED,
    PARKS,
    QUALITY,
    REQUEST,
    RESULT,
    SESSIONS,
    WRITTEN_ONCE,
    attempt_name,
    batch_key,
    cancel_key,
    lost_name,
    session_id_of,
    session_key,
    session_prefix,
    turn_key,
    turn_object,
)
from shared.session_records import BatchRecord, SessionRecord
from shared.storage import ObjectStore
from shared.turn_records import (
    AttemptRecord,
    FailureRecord,
    LostCall,
    ParkRecord,
    ParkTally,
    QualityRecord,
    TurnRequest,
    TurnResult,
)

M = TypeVar("M", bound=BaseModel)


def _dump(model: BaseModel) -> bytes:
    return model.model_dump_json(exclude_none=False).encode()


@dataclass
class SessionSnapshot:
    """Everything the store holds for one session, read in one listing."""

    record: SessionRecord
    requests: dict[int, TurnRequest] = field(default_factory=dict)
    results: dict[int, TurnResult] = field(default_factory=dict)
    failures: dict[int, FailureRecord] = field(default_factory=dict)
    parked: dict[int, ParkRecord] = field(default_factory=dict)
    park_tallies: dict[int, ParkTally] = field(default_factory=dict)
    attempts: dict[int, list[AttemptRecord]] = field(default_factory=dict)  # full reads only
    lost: dict[int, list[LostCall]] = field(default_factory=dict)
    quality: dict[int, dict[str, float]] = field(default_factory=dict)  # turns/n/quality.json
    cancelled: bool = False
    later_requested: bool = False  # a turn after `through` has a request (snapshot(through=n))

    def metrics_of(self, index: int) -> dict[str, float] | None:
        """Turn n's quality numbers wherever they were stored; None while being measured (turn
        n+1 measures a deferred turn n while it waits for its own answer)."""
        result = self.results.get(index)
        if result is None:
            return None
        if not result.metrics_deferred:
            return result.metrics
        after = self.results.get(index + 1)
        carried = after.previous_metrics if after is not None else None
        stored = self.quality.get(index)
        # Non-empty numbers win over {} (a measurement that failed once, kept by either)
        return carried or stored or (carried if carried is not None else stored)

    def parks_so_far(self, index: int) -> int:
        """How often turn n's current request was parked (surviving the sweep's unpark)."""
        request = self.requests.get(index)
        revision = request.revision if request else 1
        counts = [
            record.parks
            for record in (self.parked.get(index), self.park_tallies.get(index))
            if record is not None and record.request_revision == revision
        ]
        return max(counts, default=0)

    @property
    def last_index(self) -> int:
        """The highest requested turn index (0 for none)."""
        return max(self.requests, default=0)


class SessionRepository:
    """Typed access to one store's sessions; every commit is a create-if-absent."""

    def __init__(self, store: ObjectStore, cache: ObjectCache | None = None) -> None:
        self.store = store
        self.cache = cache  # the machine's copies of objects, by ETag (shared/blobcache.py)

    def _read(self, key: str, model: type[M], tag: str = "") -> M | None:
        """The object parsed; from the machine's cache when a listing gave its tag, or when it
        is written once (`session.json`, `result.json`) and was seen before."""
        once = key.endswith(WRITTEN_ONCE)
        cached = self._cached(key, tag, once)
        try:
            data = cached if cached is not None else self.store.get(key)
        except ObjectNotFound:
            return None
        if cached is None and self.cache is not None:
            self._keep(key, data, once)
        return model.model_validate_json(data)

    def _cached(self, key: str, tag: str, once: bool) -> bytes | None:
        if self.cache is None:
            return None
        found = self.cache.get(tag) if tag else None
        return found if found is not None or not once else self.cache.written_once(key)

    def _keep(self, key: str, data: bytes, once: bool) -> None:
        if self.cache is not None and once:
            self.cache.keep_written_once(key, data)
        elif self.cache is not None:
            self.cache.put(data)

    def create_session(self, record: SessionRecord) -> bool:
        """Write `session.json`; False when the id is already taken."""
        return self.store.put_if_absent(session_key(record.session_id), _dump(record))

    def find_session(self, sid: str) -> SessionRecord | None:
        """The session's record, or None when it does not exist."""
        return self._read(session_key(sid), SessionRecord)

    def session(self, sid: str) -> SessionRecord:
        """The session's record; UnknownSession when it does not exist."""
        record = self._read(session_key(sid), SessionRecord)
        if record is None:
            raise UnknownSession(f"session {sid} does not exist; `editqueue status` lists sessions")
        return record

    def add_request(self, sid: str, request: TurnRequest) -> bool:
        """Create turn n's request; False when another writer already made turn n."""
        return self.store.put_if_absent(turn_key(sid, request.index, REQUEST), _dump(request))

    def replace_request(self, sid: str, request: TurnRequest) -> None:
        """Reword an uncommitted turn (manual retry); the caller checked it has no result."""
        self.store.put(turn_key(sid, request.index, REQUEST), _dump(request))

    def request(self, sid: str, index: int) -> TurnRequest | None:
        """Turn n's request, or None."""
        return self._read(turn_key(sid, index, REQUEST), TurnRequest)

    def commit_result(self, sid: str, result: TurnResult) -> tuple[TurnResult, bool]:
        """Commit turn n once; returns the winning result and whether this call won."""
        key = turn_key(sid, result.index, RESULT)
        data = _dump(result)
        if self.store.put_if_absent(key, data):
            self._keep(key, data, once=True)  # the next turn reads it here: no GET on this machine
            return result, True
        winner = self._read(key, TurnResult)
        if winner is None:  # deleted in between: not a state editqueue creates
            raise ObjectNotFound(f"{key} vanished after a conflicting commit")
        return winner, False

    def result(self, sid: str, index: int) -> TurnResult | None:
        """Turn n's committed result, or None."""
        return self._read(turn_key(sid, index, RESULT), TurnResult)

    def is_committed(self, sid: str, index: int) -> bool:
        """True when turn n has a result (turn 0, the empty history, always counts)."""
        return index == 0 or self.store.exists(turn_key(sid, index, RESULT))

    def record_failure(self, sid: str, failure: FailureRecord) -> None:
        """Write (or replace) why turn n stopped."""
        self.store.put(turn_key(sid, failure.index, FAILURE), _dump(failure))

    def failure(self, sid: str, index: int) -> FailureRecord | None:
        """Turn n's failure record, or None."""
        return self._read(turn_key(sid, index, FAILURE), FailureRecord)

    def clear_failure(self, sid: str, index: int) -> None:
        """Remove turn n's failure record before a manual retry."""
        self.store.delete(turn_key(sid, index, FAILURE))

    def record_attempt(self, sid: str, record: AttemptRecord) -> bool:
        """Keep an uncommitted API attempt (once per revision and attempt number)."""
        name = attempt_name(record.request_revision, record.attempt)
        return self.store.put_if_absent(turn_key(sid, record.index, name), _dump(record))

    def park(self, sid: str, park: ParkRecord) -> None:
        """Record that turn n waits until `park.due_at` (replaces an earlier park), and count it
        in `parks.json`, which unparking leaves in place."""
        revision = park.request_revision
        tally = ParkTally(index=park.index, request_revision=revision, parks=park.parks)
        self.store.put(turn_key(sid, park.index, PARKS), _dump(tally))
        self.store.put(turn_key(sid, park.index, PARKED), _dump(park))

    def parked(self, sid: str, index: int) -> ParkRecord | None:
        """Turn n's park record, or None."""
        return self._read(turn_key(sid, index, PARKED), ParkRecord)

    def _read_quality(self, key: str, tag: str) -> dict[str, float] | None:
        found = self._read(key, QualityRecord, tag)
        return found.metrics if found is not None else None

    def put_quality(self, sid: str, index: int, metrics: dict[str, float]) -> bool:
        """Store a deferred turn's quality numbers (written once): an attempt of turn n+1 ended
        without a result to carry them. True when this call created `quality.json`."""
        return self.store.put_if_absent(
            turn_key(sid, index, QUALITY), _dump(QualityRecord(index=index, metrics=metrics))
        )

    def unpark(self, sid: str, index: int) -> None:
        """Forget turn n's park record (it was re-enqueued, committed or failed)."""
        self.store.delete(turn_key(sid, index, PARKED))

    def record_lost_call(self, sid: str, lost: LostCall) -> bool:
        """Write `lost-{attempt}.json` once; False when that attempt was recorded already."""
        key = turn_key(sid, lost.index, lost_name(lost.attempt))
        return self.store.put_if_absent(key, _dump(lost))

    def cancel(self, sid: str) -> None:
        """Mark the session cancelled: workers stop before the next API call."""
        self.store.put(cancel_key(sid), b"")

    def is_cancelled(self, sid: str) -> bool:
        """True when the cancel marker exists."""
        return self.store.exists(cancel_key(sid))

    def create_batch(self, batch: BatchRecord) -> bool:
        """Write a batch manifest; False when the batch id is taken."""
        return self.store.put_if_absent(batch_key(batch.batch_id), _dump(batch))

    def save_batch(self, batch: BatchRecord) -> None:
        """Replace a batch manifest (a budget change)."""
        self.store.put(batch_key(batch.batch_id), _dump(batch))

    def batch(self, batch_id: str) -> BatchRecord:
        """A batch's manifest; UnknownSession-style error when it does not exist."""
        record = self._read(batch_key(batch_id), BatchRecord)
        if record is None:
            raise UnknownSession(f"batch {batch_id} does not exist")
        return record

    def session_ids(self) -> Iterator[str]:
        """Every session id in the store, in key order."""
        for key in self.store.list(SESSIONS):
            if (sid := session_id_of(key)) is not None:
                yield sid

    def snapshot(self, sid: str, through: int | None = None) -> SessionSnapshot:
        """Read the session: one listing, then each object once.

        With `through`, the objects of later turns are skipped: turn n needs only turns 1..n,
        and reading every later request made each turn cost O(session length) GETs.
        """
        listed = list(self.store.list_tagged(session_prefix(sid)))
        tags = dict(listed)
        record = self._read(session_key(sid), SessionRecord, tags.get(session_key(sid), ""))
        if record is None:
            raise UnknownSession(f"session {sid} does not exist; `editqueue status` lists sessions")
        snap = SessionSnapshot(record=record)
        for key, tag in listed:
            self._load_into(snap, sid, key, through, tag)
        return snap

    def _load_into(
        self, snap: SessionSnapshot, sid: str, key: str, through: int | None, tag: str = ""
    ) -> None:
        rest = key[len(session_prefix(sid)) :]
        if rest == CANCEL:
            snap.cancelled = True
            return
        found = turn_object(rest)
        if found is None:
            return
        index, name = found
        if through is not None and index > through:
            snap.later_requested |= name == REQUEST
            return
        if name.startswith((ATTEMPTS, LOST)):
            # Only status reads (no `through`) show them; a running turn need not read them.
            if through is None:
                self._load_history(snap, key, index, name)
            return
        loaders: dict[str, tuple[dict[int, Any], Callable[[], Any]]] = {
            REQUEST: (snap.requests, lambda: self._read(key, TurnRequest, tag)),
            RESULT: (snap.results, lambda: self._read(key, TurnResult, tag)),
            FAILURE: (snap.failures, lambda: self._read(key, FailureRecord, tag)),
            PARKED: (snap.parked, lambda: self._read(key, ParkRecord, tag)),
            PARKS: (snap.park_tallies, lambda: self._read(key, ParkTally, tag)),
            QUALITY: (snap.quality, lambda: self._read_quality(key, tag)),
        }
        if name in loaders:
            target, read = loaders[name]
            if (value := read()) is not None:
                target[index] = value

    def _load_history(self, snap: SessionSnapshot, key: str, index: int, name: str) -> None:
        if name.startswith(ATTEMPTS) and (attempt := self._read(key, AttemptRecord)):
            snap.attempts.setdefault(index, []).append(attempt)
        elif name.startswith(LOST) and (lost := self._read(key, LostCall)):
            snap.lost.setdefault(index, []).append(lost)
