"""Polling a batch reads session.json and result.json once; everything else afresh."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from producer import batch, submission
from producer.read_cache import ImmutableReadCache
from producer.specs import LoadedSpec
from shared.services import Services
from shared.storage import MemoryStore
from tests.producer.conftest import commit_turn, spec_of


class CountingStore(MemoryStore):
    """A memory store that counts reads per key."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: Counter[str] = Counter()

    def get(self, key: str) -> bytes:
        self.reads[key] += 1
        return super().get(key)


def test_write_once_objects_are_read_once_and_requests_every_time() -> None:
    store = CountingStore()
    store.put("sessions/s1/session.json", b"{}")
    store.put("sessions/s1/turns/0001/request.json", b"{}")
    cache = ImmutableReadCache(store)

    for _ in range(3):
        cache.get("sessions/s1/session.json")
        cache.get("sessions/s1/turns/0001/request.json")

    assert store.reads["sessions/s1/session.json"] == 1
    assert store.reads["sessions/s1/turns/0001/request.json"] == 3


def test_polling_a_batch_sees_new_commits_while_reusing_old_results(
    services: Services, tmp_path: Path
) -> None:
    items = [LoadedSpec(spec_of("a", "b"), tmp_path, "s")]
    (sid,) = submission.submit_many(services, items, batch_id="b1")
    polling = batch.for_polling(services)
    commit_turn(services, sid, 1)

    first = batch.status(polling, "b1")
    commit_turn(services, sid, 2)
    second = batch.status(polling, "b1")

    assert (first.turns_done, second.turns_done) == (1, 2)
    assert second.finished is True
