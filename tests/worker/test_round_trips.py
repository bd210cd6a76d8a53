"""S3 round trips of a turn at steady state: one listing of the session, the read of its own
request, the two writes of the commit (the chain reads nothing when the listing showed turn
n+1's request); objects seen before come from the machine's cache."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from shared.blobcache import ObjectCache
from shared.sessions import SessionRepository
from shared.storage import MemoryStore
from tests.worker.conftest import answer, jpeg, make_world
from worker.turn import Outcome, TurnRunner


class CountingStore(MemoryStore):
    """A memory store that counts requests the way S3 would bill them."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        super().__init__()
        self.objects = objects
        self.counts: Counter[str] = Counter()

    def get(self, key: str) -> bytes:
        self.counts[f"GET {key.rsplit('/', 1)[-1]}"] += 1
        return super().get(key)

    def put(self, key: str, data: bytes) -> None:
        self.counts["PUT"] += 1
        super().put(key, data)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        self.counts["PUT"] += 1
        return super().put_if_absent(key, data)

    def exists(self, key: str) -> bool:
        self.counts["HEAD"] += 1
        return super().exists(key)

    def list_tagged(self, prefix: str) -> Iterator[tuple[str, str]]:
        self.counts["LIST"] += 1
        return super().list_tagged(prefix)


def test_a_turn_after_one_this_machine_ran_costs_four_requests(tmp_path: Path) -> None:
    world = make_world(tmp_path, [answer(jpeg((1, 2, 3))), answer(jpeg((4, 5, 6)))])
    sid = world.session(["a room", "sage walls", "a lamp"])
    store = CountingStore(world.store.objects)
    repo = SessionRepository(store, ObjectCache(tmp_path / "objects"))
    services = dataclasses.replace(world.services, repo=repo)
    world.services.blobs.store = store
    runner = TurnRunner(services, owner="w1", rng=random.Random(1))
    assert runner.run(sid, 1, 1) is Outcome.COMMITTED
    first = sum(store.counts.values())
    store.counts.clear()

    assert runner.run(sid, 2, 1) is Outcome.COMMITTED

    assert store.counts == Counter({"LIST": 1, "PUT": 2, "GET request.json": 1}), store.counts
    assert first == 5  # LIST, GET session.json, GET request 1, PUT blob, PUT result
