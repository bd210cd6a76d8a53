"""The store's session index: open markers and summaries, kept by submit, append, retry, the
sweep's reconcile and `reconcile --full`; listings and sweeps read it instead of every session."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from producer import sessions, submission
from producer.listing import session_page
from shared.keys import open_key
from shared.models import SessionState
from shared.reconcile import reconcile
from shared.services import Services
from shared.session_index import SessionIndex
from shared.session_spec import TurnSpec
from shared.storage import MemoryStore
from tests.producer.conftest import commit_turn, fail_turn, spec_of


class CountingStore(MemoryStore):
    """A memory store that counts requests by verb, and can run a hook on a delete."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()
        self.on_delete: dict[str, object] = {}

    def get(self, key: str) -> bytes:
        self.counts["GET"] += 1
        return super().get(key)

    def list(self, prefix: str) -> Iterator[str]:
        self.counts["LIST"] += 1
        return super().list(prefix)

    def delete(self, key: str) -> None:
        super().delete(key)
        hook = self.on_delete.pop(key, None)
        if callable(hook):
            hook()


def counting(services: Services) -> CountingStore:
    store = CountingStore()
    store.objects = services.repo.store.objects  # type: ignore[attr-defined]
    services.repo.store = store
    return store


def index(services: Services) -> SessionIndex:
    return SessionIndex(services.repo.store)


def test_submit_marks_a_session_open_and_the_sweep_closes_it_with_its_final_summary(
    services: Services, tmp_path: Path
) -> None:
    sid = submission.submit_session(services, spec_of("a", "b"), base_dir=tmp_path)
    assert index(services).open_ids() == [sid]
    commit_turn(services, sid, 1)
    reconcile(services, time.time())
    assert index(services).open_ids() == [sid]  # turn 2 still to run

    commit_turn(services, sid, 2)
    reconcile(services, time.time())

    assert index(services).open_ids() == []
    row = index(services).summary(sid)
    assert row is not None
    assert (row.state, row.turns, row.turns_succeeded) == (SessionState.COMPLETED, 2, 2)
    assert row.cost_usd == round(2 * 0.067, 6)


def test_a_sweep_of_finished_sessions_reads_nothing_but_the_open_index(
    services: Services, tmp_path: Path
) -> None:
    for _ in range(30):
        sid = submission.submit_session(services, spec_of("a"), base_dir=tmp_path)
        commit_turn(services, sid, 1)
    reconcile(services, time.time())  # closes all 30
    store = counting(services)

    reconcile(services, time.time())

    assert store.counts == Counter({"LIST": 1})


def test_append_and_retry_reopen_a_closed_session(services: Services, tmp_path: Path) -> None:
    done = submission.submit_session(services, spec_of("a"), base_dir=tmp_path)
    failed = submission.submit_session(services, spec_of("a"), base_dir=tmp_path)
    commit_turn(services, done, 1)
    fail_turn(services, failed, 1)
    reconcile(services, time.time())
    assert index(services).open_ids() == []

    submission.append_turn(services, done, TurnSpec(prompt="more"), tmp_path)
    sessions.retry_turn(services, failed)

    assert index(services).open_ids() == sorted([done, failed])


def test_an_append_while_the_sweep_closes_the_session_keeps_it_open(
    services: Services, tmp_path: Path
) -> None:
    sid = submission.submit_session(services, spec_of("a"), base_dir=tmp_path)
    commit_turn(services, sid, 1)
    store = counting(services)
    store.on_delete[open_key(sid)] = lambda: services.repo.add_request(
        sid, submission._request(2, TurnSpec(prompt="late"), [], None)
    )  # the append's request lands right after the sweep removed the marker

    reconcile(services, time.time())

    assert index(services).open_ids() == [sid]


def test_reconcile_full_rebuilds_the_index_of_sessions_written_without_one(
    services: Services, tmp_path: Path
) -> None:
    open_sid = submission.submit_session(services, spec_of("a"), base_dir=tmp_path)
    done_sid = submission.submit_session(services, spec_of("a"), base_dir=tmp_path)
    commit_turn(services, done_sid, 1)
    for key in list(services.repo.store.objects):  # type: ignore[attr-defined]
        if key.startswith("index/"):
            services.repo.store.delete(key)
    assert sessions.list_sessions(services) == []

    sessions.reconcile(services, full=True)

    assert index(services).open_ids() == [open_sid]
    rows = {row.session_id: row.state for row in sessions.list_sessions(services)}
    assert rows == {open_sid: SessionState.QUEUED, done_sid: SessionState.COMPLETED}


def test_a_page_filters_by_tenant_and_state_from_the_summaries(
    services: Services, tmp_path: Path
) -> None:
    mine = [
        submission.submit_session(services, spec_of("a"), base_dir=tmp_path, tenant="studio")
        for _ in range(3)
    ]
    theirs = submission.submit_session(services, spec_of("a"), base_dir=tmp_path, tenant="other")
    for sid in [*mine[:2], theirs]:
        commit_turn(services, sid, 1)
    reconcile(services, time.time())

    page = session_page(services, owner="studio", limit=2)
    rest = session_page(services, owner="studio", after=page.next_after)
    done = session_page(services, owner="studio", state=SessionState.COMPLETED)

    assert [r.session_id for r in page.rows + rest.rows] == sorted(mine)
    assert rest.next_after is None
    assert [r.session_id for r in done.rows] == sorted(mine[:2])
    assert {r.tenant for r in page.rows + rest.rows} == {"studio"}
