"""Submitting work (`producer.submission`): new sessions, and new turns appended to one.

Writes follow the store's rules: `session.json`, requests and results are created with
conditional puts, and a turn is enqueued (ids only) only after everything it needs is written.
Validation always comes before the first write.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path

from producer.checks import (
    append_fit_problems,
    problems_error,
    read_reference_image,
    resolve_image,
    turn_problems,
    validate_spec,
)
from producer.guards import refuse_if_cancelled
from producer.limits import Limits
from producer.manifest import create_manifest
from producer.parallel import STORE_THREADS, parallel_map
from producer.session_ids import generate_session_id, require_free, taken
from producer.specs import LoadedSpec
from producer.tiers import check_tiers
from shared.broker import dispatch
from shared.catalog import profile_for
from shared.errors import EditQueueError, InvalidSpec, StorageUnavailable
from shared.ids import public_session_id, scoped_session_id
from shared.images import sniff_mime
from shared.keys import REQUEST, turn_key
from shared.metrics import record_session
from shared.models import Tier, Transport
from shared.services import Services, index_of
from shared.session_records import SessionRecord
from shared.session_spec import SessionSpec, TurnSpec
from shared.turn_records import BlobRef, TurnRequest

# A session writes turn 1, then its turns 2..n LATER_TURNS_AT_ONCE at a time, its open marker
# and session.json; as many sessions are written at once as keep STORE_THREADS requests in flight
# (the S3 client's pool): 8 for sessions of 5+ turns, 32 for 1-2 turns (`sessions_in_flight`).
# Few sessions at a time finish in order, and each is queued as soon as it is whole: with 32
# 4-turn sessions at once, a store on the workers' own cores (moto; MinIO in docker-compose)
# finished them all together ~0.6 s in, and the batch's makespan was 1.18 x the peer's against
# 1.11-1.14 x with 8 (bench/makespan.py, same sitting). The price, on a store where each write
# waits ~20 ms (S3 across a network; measured with such a stub): a 5-turn session is written in
# 4 round trips (0.09 s, was 0.14 s), but 400 of them take 4.2 s instead of 1.9 s.
LATER_TURNS_AT_ONCE = 4


def _now() -> datetime:
    return datetime.now(UTC)


def limits_of(services: Services) -> Limits:
    """The limits of this process's settings."""
    return Limits.from_settings(services.settings)


def default_budget(services: Services, tenant: str | None) -> float | None:
    """The budget of a session that names none: its tenant's, else the fleet's (or None)."""
    settings = services.settings
    return settings.tenant_budgets_usd.get(tenant or "", settings.default_budget_usd)


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
    scope_ids: bool = True,
) -> list[str]:
    """Validate every session, then write each (in parallel) and enqueue it once written; ids
    in order. Nothing is written when any spec is invalid; a write that fails stops the rest
    (the sessions already written run, as the sweep would run them anyway: they are open).

    With `batch_id`, the batch manifest (every session id and `budget_usd`) is the first write.
    With `tenant`, client-chosen ids are stored as `tenant.id` (another tenant's id is no
    collision) unless `scope_ids` is False (the CLI: its ids are the operator's own); ids
    returned are the stored ones. `tier` is the tier of sessions whose spec names none
    (standard when both are unset).
    """
    tiers = [item.spec.tier or tier or Tier.STANDARD for item in items]
    sids = _new_session_ids(services, items, tenant if scope_ids else None)
    check_tiers(services.settings, items, tiers)
    if batch_id is not None:
        create_manifest(services.repo, batch_id, sids, budget_usd, _now())
    owner = {"tenant": tenant, "webhook_url": webhook_url}
    unqueued: list[StorageUnavailable] = []

    def write_and_start(job: tuple[LoadedSpec, str, Tier]) -> None:
        item, sid, session_tier = job
        _write_session(services, item, sid, batch_id, owner, session_tier)
        # At once, not after the whole batch: the first turns run while the rest is written.
        # A broker failure stops no write: every session is stored, then the error is raised.
        try:
            enqueue(services, sid, 1, session_tier)
        except StorageUnavailable as exc:
            unqueued.append(exc)
            return
        services.coord.track_session(sid)
        record_session("submitted")

    parallel_map(
        write_and_start,
        list(zip(items, sids, tiers, strict=True)),
        threads=sessions_in_flight(items),
        desc="writing" if show_progress else None,
    )
    if len(unqueued) == 1:
        raise unqueued[0]  # names the session, and what to run
    if unqueued:
        first = unqueued[0].__cause__ or unqueued[0]
        raise StorageUnavailable(
            f"{len(unqueued)} of {len(sids)} sessions are stored but not queued ({first}); run "
            "`editqueue reconcile` once the broker is reachable"
        )
    return sids


def sessions_in_flight(items: Sequence[LoadedSpec]) -> int:
    """How many sessions to write at once: as many as keep STORE_THREADS writes in flight when
    each writes up to LATER_TURNS_AT_ONCE of its later turns at a time."""
    widest = max((min(len(item.spec.turns) - 1, LATER_TURNS_AT_ONCE) for item in items), default=1)
    return STORE_THREADS // max(widest, 1)


def _new_session_ids(
    services: Services, items: Sequence[LoadedSpec], tenant: str | None
) -> list[str]:
    """Validate each spec and pick its id; client ids must be unique and not yet in the store."""
    sids: list[str] = []
    limits = limits_of(services)
    for item in items:
        validate_spec(item.spec, item.base_dir, services.settings.model, limits)
        given_id = item.spec.session_id
        sids.append(scoped_session_id(tenant, given_id) if given_id else generate_session_id())
    given = [sid for sid, item in zip(sids, items, strict=True) if item.spec.session_id]
    if len(set(given)) < len(given):
        twice = next(sid for sid in given if given.count(sid) > 1)
        raise InvalidSpec(f"session id {public_session_id(twice)} appears twice in this submission")
    parallel_map(lambda sid: require_free(services.repo, sid), given)
    return sids


def _write_session(
    services: Services,
    item: LoadedSpec,
    sid: str,
    batch_id: str | None,
    owner: dict[str, str | None] | None = None,
    tier: Tier = Tier.STANDARD,
) -> None:
    """All or nothing: the requests first, `session.json` last (a session exists only once it is
    there, so a failure midway leaves nothing visible), and what this call wrote is removed when
    any write fails. Turn 1's create-if-absent is the id's claim, as `session.json`'s was."""
    spec = item.spec
    owner = owner or {}
    images = [_upload_images(services, turn, item.base_dir) for turn in spec.turns]
    masks = [_upload_mask(services, turn, item.base_dir) for turn in spec.turns]
    record = SessionRecord(
        session_id=sid,
        model=spec.model or services.settings.model,
        aspect_ratio=spec.aspect_ratio,
        image_size=spec.image_size,
        history=spec.history,
        metadata=spec.metadata,
        budget_usd=_budget(services, spec.budget_usd, owner.get("tenant")),
        batch_id=batch_id,
        tier=tier,
        transport=spec.transport or Transport(services.settings.default_transport),
        created_at=_now(),
        **owner,  # the HTTP API's tenant and webhook_url
    )
    requests = [
        _request(index, turn, refs, mask)
        for index, (turn, refs, mask) in enumerate(
            zip(spec.turns, images, masks, strict=True), start=1
        )
    ]
    written: list[int] = []
    try:
        _write_requests(services, sid, requests, written)
        index_of(services).mark_open(sid)  # before session.json: the sweep never misses it
        if not services.repo.create_session(record):
            raise taken(sid)
    except BaseException:
        _undo(services, sid, written)
        raise


def _write_requests(
    services: Services, sid: str, requests: list[TurnRequest], written: list[int]
) -> None:
    """Turn 1 first and alone (its create-if-absent is the id's claim), then the later turns
    LATER_TURNS_AT_ONCE at a time; `written` gets each index written. A failure lets the
    writes already running finish, so `written` is complete when it is raised."""

    def claim(request: TurnRequest) -> None:
        if not services.repo.add_request(sid, request):
            raise taken(sid)
        written.append(request.index)

    claim(requests[0])
    parallel_map(claim, requests[1:], threads=LATER_TURNS_AT_ONCE)


def _undo(services: Services, sid: str, written: list[int]) -> None:
    """Remove what a failed submit wrote: turns 2..n (every delete tried, an outage refusing one
    leaves the others to be tried), the open marker, and turn 1 last, only when all the rest is
    gone: turn 1 is the id's claim, so an id is free again only once nothing of this submit is
    left for a retry with that id to inherit. Nothing is removed when turn 1 was not ours."""
    if not written:
        return
    cleared = True
    for index in sorted(written, reverse=True):
        if index == 1:
            continue
        try:
            services.repo.store.delete(turn_key(sid, index, REQUEST))
        except (EditQueueError, OSError):
            cleared = False
    try:
        index_of(services).unmark(sid)
    except (EditQueueError, OSError):
        cleared = False
    if cleared and 1 in written:
        with suppress(EditQueueError, OSError):
            services.repo.store.delete(turn_key(sid, 1, REQUEST))


def _budget(services: Services, given: float | None, tenant: str | None) -> float | None:
    return given if given is not None else default_budget(services, tenant)


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


def _request(
    index: int, turn: TurnSpec, images: list[BlobRef], mask: BlobRef | None = None
) -> TurnRequest:
    return TurnRequest(
        index=index,
        prompt=turn.prompt,
        images=images,
        mask=mask,
        image_size=turn.image_size,
        aspect_ratio=turn.aspect_ratio,
        created_at=_now(),
    )


def _upload(services: Services, base_dir: Path, name: str, limits: Limits) -> BlobRef:
    data = read_reference_image(resolve_image(base_dir, name), name, limits)
    sha = services.blobs.put(data)
    mime = sniff_mime(data) or "application/octet-stream"  # read_reference_image sniffed it
    return BlobRef(sha256=sha, size_bytes=len(data), mime_type=mime)


def _upload_images(
    services: Services, turn: TurnSpec, base_dir: Path, limits: Limits | None = None
) -> list[BlobRef]:
    chosen = limits or limits_of(services)
    return [_upload(services, base_dir, name, chosen) for name in turn.images]


def _upload_mask(
    services: Services, turn: TurnSpec, base_dir: Path, limits: Limits | None = None
) -> BlobRef | None:
    if not turn.mask:
        return None
    return _upload(services, base_dir, turn.mask, limits or limits_of(services))


def append_turn(services: Services, sid: str, turn: TurnSpec, base_dir: Path) -> int:
    """Add a turn after the last one; returns its index (enqueued if its predecessor is done)."""
    repo = services.repo
    snap = repo.snapshot(sid)
    refuse_if_cancelled(snap)
    limits = limits_of(services)
    if snap.last_index >= limits.max_turns:
        raise InvalidSpec(
            f"append to {public_session_id(sid)}: the session has {snap.last_index} turns, "
            "the limit (EDITQUEUE_MAX_TURNS); fork it to continue"
        )
    problems, sizes = turn_problems(turn, profile_for(snap.record.model), base_dir, (), limits)
    problems = problems or append_fit_problems(snap, turn, sizes)
    if problems:
        raise problems_error(problems, f"append to {public_session_id(sid)}")
    images = _upload_images(services, turn, base_dir, limits)
    mask = _upload_mask(services, turn, base_dir, limits)
    index = snap.last_index + 1
    while not repo.add_request(sid, _request(index, turn, images, mask)):
        index += 1  # another append took this index first
    index_of(services).mark_open(sid)  # after the request: the sweep's close re-checks
    if repo.is_committed(sid, index - 1):
        enqueue(services, sid, index, snap.record.tier)
    return index
