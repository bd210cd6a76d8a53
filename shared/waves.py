"""Batch waves in the store: one Batch API job per wave, the turns it carries, and its outcome.

`waves/{wave_id}/wave.json` is written before the job is created (state `preparing`), rewritten
once the job exists (`sent`, with the job's name) and once it ended (`done`). `waves/open/{id}`
marks a wave not yet done, so the batcher (and reconcile) find every wave in flight from the store
alone: a worker's death or a Redis wipe loses none.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from pydantic import Field

from shared.errors import ObjectNotFound
from shared.keys import WAVES, WAVES_OPEN, wave_id_of, wave_key, wave_open_key
from shared.models import Strict
from shared.storage import ObjectStore


class WaveLine(Strict):
    """One turn in a wave; `key` is `session:turn:attempt` (the Batch API's line key)."""

    key: str
    session_id: str
    index: int = Field(ge=1)
    attempt: int = Field(ge=1)
    revision: int = 1
    outcome: str | None = None  # committed, duplicate, failed, retry, cancelled, skipped


class WaveRecord(Strict):
    """`waves/{wave_id}/wave.json`: a Batch API job and the turns it carries."""

    wave_id: str
    model: str
    state: str  # preparing, sent, done
    job_name: str | None = None  # batches/{id}
    job_state: str | None = None  # the Batch API's last state (BATCH_STATE_*)
    input: str = "inline"  # inline or file
    file_name: str | None = None  # the uploaded JSONL (files/{id})
    lines: list[WaveLine]
    created_at: datetime
    sent_at: datetime | None = None
    finished_at: datetime | None = None


def line_key(sid: str, index: int, attempt: int) -> str:
    """The Batch API key of one line."""
    return f"{sid}:{index}:{attempt}"


class WaveRepository:
    """Typed access to the waves of one store."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def save(self, wave: WaveRecord) -> None:
        """Write the wave's record (and its open marker until it is done)."""
        self.store.put(wave_key(wave.wave_id), wave.model_dump_json().encode())
        if wave.state == "done":
            self.store.delete(wave_open_key(wave.wave_id))
        else:
            self.store.put(wave_open_key(wave.wave_id), b"")

    def get(self, wave_id: str) -> WaveRecord | None:
        """A wave's record, or None."""
        try:
            return WaveRecord.model_validate_json(self.store.get(wave_key(wave_id)))
        except ObjectNotFound:
            return None

    def open_waves(self) -> list[WaveRecord]:
        """Every wave not yet done (one listing of the open markers)."""
        ids = [key[len(WAVES_OPEN) :] for key in self.store.list(WAVES_OPEN)]
        return [wave for wave in map(self.get, ids) if wave is not None and wave.state != "done"]

    def all_waves(self) -> Iterator[WaveRecord]:
        """Every wave in the store, oldest id first."""
        for key in self.store.list(WAVES):
            wave_id = wave_id_of(key)
            if wave_id is not None:
                wave = self.get(wave_id)
                if wave is not None:
                    yield wave
