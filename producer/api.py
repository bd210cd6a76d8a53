"""The producer's Python API: submit, append, steer and inspect sessions.

Every function takes the process's `Services`. Writes follow the store's rules: `session.json`,
requests and results are created with conditional puts, and a turn is enqueued (ids only) only
after everything it needs is written. Validation always comes before the first write.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from ulid import ULID

from producer.checks import (
    append_fit_problems,
    problems_error,
    read_reference_image,
    resolve_image,
    turn_problems,
    validate_spec,
)
from producer.guards import check_cancel, check_fork, refuse_if_cancelled, retry_target
from producer.manifest import check_budget, create_manifest
from producer.parallel import parallel_map
from producer.report import write_report
from producer.specs import LoadedSpec
from producer.tiers import check_tiers
from shared.catalog import profile_for
from shared.dispatch import dispatch
from shared.errors import EditQueueError, InvalidSpec, StorageUnavailable
from shared.events import EventKind, make_event
from shared.images import sniff_mime
from shared.models import (
    BlobRef,
    HistoryPolicy,
    SessionRecord,
    SessionSpec,
    SessionStatus,
    Tier,
    TurnRequest,
    TurnSpec,
    validate_session_id,
)
from shared.reconcile import reconcile as reconcile_store
from shared.runtime import Services
from shared.sessions import SessionRepository, session_key
from shared.status import build_status


def generate_session_id() -> str:
    """A fresh, sortable session id (a ULID)."""
    return str(ULID())


def _now() -> datetime:
    return datetime.now(UTC)


def _checked_id(sid: str) -> str:
    try:
        return validate_session_id(sid)
    except ValueError as exc:
        raise InvalidSpec(str(exc)) from None


def _require_free(repo: SessionRepository, sid: str) -> None:
    if repo.store.exists(session_key(sid)):
        raise InvalidSpec(f"session id {sid} already exists; pick another id or omit it")


def submit_session(
    services: Services,
    spec: SessionSpec,
    *,
    base_dir: Path,
    batch_id: str | None = None,
    tenant: str | None = None,
    webhook_url: str | None = None,
) -> str:
    """Validate, write and enqueue one session; returns its id."""
    items = [LoadedSpec(spec, base_dir, "session")]
    sids = submit_many(services, items, batch_id=batch_id, tenant=tenant, webhook_url=webhook_url)
    return sids[0]


def submit_many(
    services: Services,
    items: Sequence[LoadedSpec],
    *,
    batch_id: str | None = None,
    tenant: str | None = None,
    webhook_url: str | None = None,
    budget_usd: float | None = None,
    show_progress: bool = False,
    tier: Tier | None = None,
) -> list[str]:
    """Validate every session, write them all (in parallel), then enqueue each; ids in order.

    With `batch_id`, the batch manifest (every session id and `budget_usd`) is the first write.
    `tier` is the tier of sessions whose spec names none (standard when both are unset).
    """
    tiers = [item.spec.tier or tier or Tier.STANDARD for item in items]
    sids = _new_session_ids(services, items)
    check_tiers(services.settings, items, tiers)
    if batch_id is not None:
        create_manifest(services.repo, batch_id, sids, budget_usd, _now())
    owner = {"tenant": tenant, "webhook_url": webhook_url}
    parallel_map(
        lambda job: _write_session(services, job[0], job[1], batch_id, owner, job[2]),
        list(zip(items, sids, tiers, strict=True)),
        desc="writing" if show_progress else None,
    )
    for sid, session_tier in zip(sids, tiers, strict=True):
        enqueue(services, sid, 1, session_tier)
        services.coord.track_session(sid)
    return sids


def _new_session_ids(services: Services, items: Sequence[LoadedSpec]) -> list[str]:
    """Validate each spec and pick its id; client ids must be unique and not yet in the store."""
    sids: list[str] = []
    for item in items:
        validate_spec(item.spec, item.base_dir, services.settings.model)
        sids.append(item.spec.session_id or generate_session_id())
    given = [item.spec.session_id for item in items if item.spec.session_id]
    if len(set(given)) < len(given):
        twice = next(sid for sid in given if given.count(sid) > 1)
        raise InvalidSpec(f"session id {twice} appears twice in this submission")
    parallel_map(lambda sid: _require_free(services.repo, sid), given)
    return sids


def _write_session(
    services: Services,
    item: LoadedSpec,
    sid: str,
    batch_id: str | None,
    owner: dict[str, str | None] | None = None,
    tier: Tier = Tier.STANDARD,
) -> None:
    spec = item.spec
    images = [_upload_images(services, turn, item.base_dir) for turn in spec.turns]
    record = SessionRecord(
        session_id=sid,
        model=spec.model or services.settings.model,
        aspect_ratio=spec.aspect_ratio,
        image_size=spec.image_size,
        history=spec.history,
        metadata=spec.metadata,
        budget_usd=spec.budget_usd,
        batch_id=batch_id,
        tier=tier,
        created_at=_now(),
        **(owner or {}),  # the HTTP API's tenant and webhook_url
    )
    if not services.repo.create_session(record):
        raise InvalidSpec(f"session id {sid} already exists; pick another id or omit it")
    for index, (turn, refs) in enumerate(zip(spec.turns, images, strict=True), start=1):
        services.repo.add_request(sid, _request(index, turn, refs))


def enqueue(services: Services, sid: str, index: int, tier: Tier = Tier.STANDARD) -> None:
    """Queue turn `index` on its tier's lane; if the broker fails, say that the store has it and
    how to resume."""
    try:
        dispatch(services, sid, index, lane=tier.value)
    except EditQueueError as exc:
        raise StorageUnavailable(
            f"session {sid} turn {index} is stored but not queued ({exc}); "
            "run `editqueue reconcile` once the broker is reachable"
        ) from exc


def _request(index: int, turn: TurnSpec, images: list[BlobRef]) -> TurnRequest:
    return TurnRequest(
        index=index,
        prompt=turn.prompt,
        images=images,
        image_size=turn.image_size,
        aspect_ratio=turn.aspect_ratio,
        created_at=_now(),
    )


def _upload_images(services: Services, turn: TurnSpec, base_dir: Path) -> list[BlobRef]:
    refs = []
    for name in turn.images:
        data = read_reference_image(resolve_image(base_dir, name), name)
        sha = services.blobs.put(data)
        mime = sniff_mime(data) or "application/octet-stream"  # read_reference_image sniffed it
        refs.append(BlobRef(sha256=sha, size_bytes=len(data), mime_type=mime))
    return refs


def append_turn(services: Services, sid: str, turn: TurnSpec, base_dir: Path) -> int:
    """Add a turn after the last one; returns its index (enqueued if its predecessor is done)."""
    repo = services.repo
    snap = repo.snapshot(sid)
    refuse_if_cancelled(snap)
    problems, sizes = turn_problems(turn, profile_for(snap.record.model), base_dir)
    problems = problems or append_fit_problems(snap, turn, sizes)
    if problems:
        raise problems_error(problems, f"append to {sid}")
    images = _upload_images(services, turn, base_dir)
    index = snap.last_index + 1
    while not repo.add_request(sid, _request(index, turn, images)):
        index += 1  # another append took this index first
    if repo.is_committed(sid, index - 1):
        enqueue(services, sid, index, snap.record.tier)
    return index


def session_status(services: Services, sid: str) -> SessionStatus:
    """The status document of one session (the store's truth merged with the live index)."""
    return build_status(services.repo.snapshot(sid), services.coord.live(sid))


def list_sessions(services: Services) -> list[SessionStatus]:
    """The status of every session in the store, in id order."""
    return [session_status(services, sid) for sid in services.repo.session_ids()]


def retry_turn(
    services: Services, sid: str, index: int | None = None, prompt: str | None = None
) -> int:
    """Run a failed turn again (optionally reworded); later turns follow by the chain."""
    snap = services.repo.snapshot(sid)
    index = retry_target(snap, index)
    request = snap.requests[index]
    if prompt is not None and not prompt.strip():
        raise InvalidSpec("--prompt is empty; write what this turn should change")
    update = {"revision": request.revision + 1, "prompt": prompt or request.prompt}
    services.repo.replace_request(sid, request.model_copy(update=update))
    services.repo.clear_failure(sid, index)
    services.coord.clear_live(sid, index)
    enqueue(services, sid, index, snap.record.tier)
    return index


def cancel(services: Services, sid: str) -> None:
    """Stop the session before its next API call (a running call still commits).

    Refused (InvalidState) when nothing is queued or running: a completed or failed session.
    """
    check_cancel(session_status(services, sid))
    services.repo.cancel(sid)
    services.events.emit(make_event(EventKind.SESSION_CANCELLED, sid, _now()))


def fork(
    services: Services,
    sid: str,
    at: int,
    new_session_id: str | None = None,
    history: HistoryPolicy | None = None,
    budget_usd: float | None = None,
) -> str:
    """A new session holding turns 1..at of `sid` (requests and results; blobs are shared).

    With `history`, the fork replays its turns under that policy (e.g. first+last:K re-anchors a
    session that outgrew the request limit); with `budget_usd`, it spends up to that (its copied
    turns count), since a session's own budget is fixed.
    """
    repo = services.repo
    snap = repo.snapshot(sid)
    check_fork(snap, at)
    new_sid = _checked_id(new_session_id) if new_session_id else generate_session_id()
    _require_free(repo, new_sid)
    update = {"session_id": new_sid, "forked_from": sid, "created_at": _now(), "batch_id": None}
    if history is not None:
        update["history"] = history
    if budget_usd is not None:
        check_budget(budget_usd, "--budget-usd")
        update["budget_usd"] = budget_usd
    if not repo.create_session(snap.record.model_copy(update=update)):
        raise InvalidSpec(f"session id {new_sid} already exists; pick another id or omit it")
    for index in range(1, at + 1):
        repo.add_request(new_sid, snap.requests[index])
        repo.commit_result(new_sid, snap.results[index])
    services.coord.track_session(new_sid)
    return new_sid


def reconcile(services: Services, *, include_budget: bool = False) -> int:
    """Re-enqueue every due turn the store knows of; returns how many were enqueued."""
    return reconcile_store(services, time.time(), include_budget=include_budget)


def export(services: Services, sid: str, out_dir: Path) -> Path:
    """Write the session's images, evolution strip, report and status into `out_dir`."""
    snap = services.repo.snapshot(sid)
    status = build_status(snap, services.coord.live(sid))
    return write_report(status, snap, services.blobs.read, out_dir)
