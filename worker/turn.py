"""One turn, start to finish: DESIGN.md "The turn task", steps 1-8, for one delivery.

Every error a step raises becomes one action through `worker.actions.action_for`; the runner
only carries it out (`carry_out`). Steps 5-6, the call itself, are `worker.call.Caller`.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from shared import tracing
from shared.broker import LANE_STANDARD
from shared.catalog import profile_for, turn_cost_usd
from shared.errors import (
    EditQueueError,
    LeaseHeld,
    TransientError,
)
from shared.events import EventKind, make_event
from shared.history import effective_size
from shared.keys import turn_lease
from shared.models import Tier
from shared.responses import ApiResponse, ReturnedPart
from shared.sessions import SessionSnapshot
from shared.turn_records import TurnRequest, TurnResult
from worker.actions import Attempt, Fail, Park, Requeue, Stop, action_for
from worker.call import Caller, interactions_of
from worker.effects import TurnEffects
from worker.failpoints import failpoint
from worker.heartbeat import heartbeat_for
from worker.measuring import keep, measure_later, numbers
from worker.observe import TurnObservation
from worker.results import build_result
from worker.spend import BudgetHold
from worker.transport import chain_fields, orphaned
from worker.wiring import WorkerServices

log = logging.getLogger("editqueue.turn")


class Outcome(StrEnum):
    """How one delivery of `run_turn` ended."""

    COMMITTED = "committed"
    DUPLICATE = "duplicate"  # another attempt committed first; we carried on with the winner
    ALREADY_DONE = "already_done"
    NOT_READY = "not_ready"  # turn n-1 is not committed yet: its commit will chain this one
    NO_REQUEST = "no_request"
    CANCELLED = "cancelled"
    FAILED = "failed"
    RETRY = "retry"
    REQUEUED = "requeued"  # a store or Redis hiccup around the call: the same attempt again
    PARKED = "parked"
    THROTTLED = "throttled"  # the fleet's rate limit or in-flight cap said wait
    BUSY = "busy"
    FALLBACK = "fallback"  # a flex turn shed too often or past its deadline: now standard


def delivery_owner(task_id: str | None) -> str:
    """A lease owner unique to one delivery of a task.

    Not the task id alone: duplicates of a turn share its deterministic id (a BUSY requeue, a
    chain sent by both a winner and a 412 loser), and a lease re-entrant for them would let both
    pay for the same turn at once.
    """
    return f"{task_id or 'task'}/{uuid.uuid4().hex[:12]}"


@dataclass
class Turn:
    """The turn this delivery runs; the steps fill in what they learn."""

    sid: str
    index: int
    attempt: int
    snap: SessionSnapshot | None = None  # the session through this turn, once read (step 4)
    revision: int | None = None  # the request's revision, once known
    in_call: bool = False  # between building the request and the API's answer (steps 5-6)
    measuring: Future[dict[str, float]] | None = None  # deferred turn n-1, measured meanwhile

    @property
    def request(self) -> TurnRequest:
        """The turn's request (after step 4)."""
        assert self.snap is not None
        return self.snap.requests[self.index]

    @property
    def parks(self) -> int:
        """Parks so far, counted where the sweep's unpark leaves them."""
        return self.snap.parks_so_far(self.index) if self.snap is not None else 0

    @property
    def size(self) -> str | None:
        """The image size the turn asks for (its own, else the session's)."""
        assert self.snap is not None
        return effective_size(self.snap.record, self.request)[1]


@dataclass
class TurnRunner:
    """Runs `run_turn(sid, n)` for one delivery; safe to run for duplicates and redeliveries."""

    services: WorkerServices
    owner: str
    rng: random.Random = field(default_factory=random.Random)
    lane: str = LANE_STANDARD  # the tier this delivery calls (and bills) at: standard or flex
    obs: TurnObservation = field(init=False)

    def run(self, sid: str, index: int, attempt: int) -> Outcome:
        """Steps 1-8 for one delivery; whatever a step raises becomes one action. Then one
        report of what this delivery did (log line, metrics)."""
        turn = Turn(sid, index, attempt)
        effects = TurnEffects(self.services, sid, index, self.lane)
        self._observe(turn)
        try:
            outcome = self._outcome(turn, effects)
        except BaseException:  # carrying out the action failed too: the task fails
            self.obs.finish("error", self.services.repo)
            raise
        self.obs.finish(outcome, self.services.repo)
        return outcome

    def _outcome(self, turn: Turn, effects: TurnEffects) -> Outcome:
        try:
            return self._steps(turn, effects)
        except Exception as exc:
            try:
                return self.carry_out(exc, turn, effects)
            except TransientError as again:  # the store or Redis failed carrying it out
                turn.in_call = False
                return self.carry_out(again, turn, effects)

    def _observe(self, turn: Turn) -> None:
        """Make sure `obs` observes this turn (run() makes it; a batch line arrives without)."""
        current = getattr(self, "obs", None)
        if current is None or (current.sid, current.index) != (turn.sid, turn.index):
            secret = TurnEffects.key_of(self.services)
            self.obs = TurnObservation(
                turn.sid, turn.index, turn.attempt, secret=secret, tier=self.lane
            )
            if turn.snap is not None:
                self.obs.loaded(turn.snap, turn.index)

    def _steps(self, turn: Turn, effects: TurnEffects) -> Outcome:
        sid, index = turn.sid, turn.index
        lease = turn_lease(sid, index)
        # Short, renewed by the heartbeat while the attempt runs: a dead holder's lapses in
        # seconds and the sweep puts the turn back (worker/recovery.py).
        ttl_s = self.services.settings.lease_ttl_s
        if not self.services.coord.acquire_lease(lease, self.owner, ttl_s):
            raise LeaseHeld(f"turn {sid}/{index} is running in another delivery")
        try:
            with heartbeat_for(self.services.coord, ttl_s).holding(sid, index, self.owner):
                return self._under_lease(turn, effects)
        finally:
            self.services.coord.release_lease(lease, self.owner)

    def _under_lease(self, turn: Turn, effects: TurnEffects) -> Outcome:
        sid, index = turn.sid, turn.index
        # One listing of the session answers steps 1-3 and is the history of step 4; objects
        # this machine read or wrote before come from its cache (shared/blobcache.py).
        with tracing.span("load history", editqueue__turn=index):
            turn.snap = snap = self.services.repo.snapshot(sid, through=index)
        if index in snap.results:  # 1. done already (a redelivery)
            self.after_commit(
                sid, index, snap.results[index], redelivered=True, next_listed=snap.later_requested
            )
            return Outcome.ALREADY_DONE
        if snap.cancelled:  # 2. cancelled before it started
            self.services.coord.clear_live(sid, index)
            self.keep_previous_quality(turn)
            return Outcome.CANCELLED
        if index > 1 and index - 1 not in snap.results:  # 3. not ready: n-1's commit chains it
            return Outcome.NOT_READY
        request = snap.requests.get(index)
        turn.revision = request.revision if request else None
        if request is None:
            return Outcome.NO_REQUEST
        self.obs.loaded(snap, turn.index)
        failure = snap.failures.get(turn.index)
        if failure and failure.request_revision == request.revision:
            self.keep_previous_quality(turn)  # in case the failing delivery died before it did
            return Outcome.FAILED  # a stale redelivery of a turn that already failed
        effects.running(turn.attempt)
        turn.measuring = measure_later(self.services.blobs, snap, index - 1)
        turn.in_call = True
        caller = Caller(self.services, self.owner, self.lane, self.obs)
        response, chosen, hold = caller.call(snap, index)  # 5-6. build, fit, hold, gate, call
        turn.in_call = False
        return self.commit(turn, effects, response, chosen, hold)  # 7-8. commit, chain, tell

    def carry_out(self, exc: Exception, turn: Turn, effects: TurnEffects) -> Outcome:
        """Do what `action_for` says about `exc` for this turn."""
        at = Attempt(turn.attempt, turn.parks, self.lane, turn.in_call)
        action = action_for(exc, at, self.services.settings, time.time(), self.rng)
        self._observe(turn)
        if isinstance(exc, EditQueueError) and not isinstance(exc, LeaseHeld):
            self.obs.error = exc
        if isinstance(action, Requeue):
            shown = exc if action.shows_error and isinstance(exc, EditQueueError) else None
            if action.outcome == Outcome.THROTTLED:
                self.obs.throttled(action.countdown_s)
            elif action.outcome == Outcome.RETRY:
                self.obs.retry_in_s = action.countdown_s
            # Before the turn is handed back: the next attempt's listing then shows quality.json,
            # so it neither measures turn n-1 again nor counts its verdicts a second time.
            self.keep_previous_quality(turn)
            effects.requeue(action.attempt, action.countdown_s, shown, action.reason, action.lane)
            return Outcome(action.outcome)
        if isinstance(action, Stop):
            self.keep_previous_quality(turn, ending=True)
            effects.done()
            return Outcome.CANCELLED
        revision = turn.revision
        if revision is None and (request := self.services.repo.request(turn.sid, turn.index)):
            revision = request.revision
        if revision is None:  # no request left to park or fail: nothing left to run
            effects.done()
            return Outcome.NO_REQUEST
        if isinstance(action, Park):
            assert isinstance(exc, EditQueueError)
            self.obs.park_until, self.obs.park_reason = action.due_at, action.reason
            self.keep_previous_quality(turn)
            effects.park(
                action.attempt, action.due_at, action.reason, exc, revision, turn.parks + 1
            )
            return Outcome.PARKED
        assert isinstance(action, Fail), action
        if not isinstance(exc, EditQueueError):
            log.error("turn %s/%d: a bug; the turn fails", turn.sid, turn.index, exc_info=exc)
        self.keep_previous_quality(turn, ending=True)
        effects.fail(action.attempt, exc, revision)
        return Outcome.FAILED

    def _previous_metrics(self, turn: Turn) -> dict[str, float] | None:
        """Unmeasured turn n-1's numbers, to commit with this turn: measured while this turn
        waited, else now (a batch line); None when turn n-1 needs none from this turn."""
        if turn.snap is None:
            return None
        return numbers(self.services.blobs, turn.snap, turn.index - 1, turn.measuring)

    def keep_previous_quality(self, turn: Turn, *, ending: bool = False) -> None:
        """This attempt ends without a result to carry unmeasured turn n-1's numbers: store
        them in `turns/n-1/quality.json` (worker/measuring.py). An attempt that never read the
        session (a busy duplicate, an outage) leaves it to the next, unless the turn is
        `ending` (failed or cancelled). Never raises: the attempt's outcome is what matters."""
        if turn.index < 2 or (turn.snap is None and not ending):
            return
        try:
            snap = turn.snap or self.services.repo.snapshot(turn.sid, through=turn.index)
        except Exception:  # an outage: the next attempt (or the sweep's) keeps them
            log.warning("turn %s/%d: quality not kept", turn.sid, turn.index, exc_info=True)
            return
        keep(self.services, snap, turn.index - 1, turn.measuring)

    def commit(
        self,
        turn: Turn,
        effects: TurnEffects,
        response: ApiResponse,
        chosen: ReturnedPart,
        hold: BudgetHold,
    ) -> Outcome:
        """Step 7: exact bytes to blobs, `result.json` once, then step 8."""
        snap, sid, index = turn.snap, turn.sid, turn.index
        assert snap is not None
        self._observe(turn)  # a batch wave's line commits without run()
        cost_usd = response_cost(turn, response, self.services, self.lane)
        self.obs.billed(cost_usd)
        try:
            with tracing.span("store blobs", editqueue__turn=index):
                result = build_result(
                    blobs=self.services.blobs,
                    record=snap.record,
                    request=turn.request,
                    response=response,
                    chosen=chosen,
                    attempt=turn.attempt,
                    now=datetime.now(UTC),
                    cost_usd=cost_usd,
                    previous=snap.results.get(index - 1),
                    tier=self.lane,
                    deferred=snap.later_requested,  # turn n+1 measures it while it waits
                    previous_metrics=self._previous_metrics(turn),
                )
            retention_s = self.services.settings.interaction_retention_s
            fields = chain_fields(response, result.committed_at, retention_s)
            result = result.model_copy(update=fields)
            failpoint(self.services.settings, "after_blobs")
            with tracing.span("commit", editqueue__turn=index):
                winner, won = self.services.repo.commit_result(sid, result)
        finally:
            hold.settle(cost_usd)  # billed, whether or not this attempt won the commit
        if not won and (loser := orphaned(response, winner)) is not None:
            # The committed answer's interaction is the chain; ours would only fork it.
            interactions_of(self.services).delete(loser)
        effects.done()
        if index in snap.parked:
            self.services.repo.unpark(sid, index)
        if won:
            self.obs.committed(snap, result, self.services.settings.quality)
        # Reported before anything can fail or kill us: the commit is what happened.
        self.obs.finish(Outcome.COMMITTED if won else Outcome.DUPLICATE, self.services.repo)
        failpoint(self.services.settings, "after_commit")
        self.after_commit(
            sid, index, winner, tier=snap.record.tier, next_listed=snap.later_requested
        )
        return Outcome.COMMITTED if won else Outcome.DUPLICATE

    def after_commit(
        self,
        sid: str,
        index: int,
        result: TurnResult | None = None,
        *,
        redelivered: bool = False,
        tier: Tier | None = None,
        next_listed: bool = False,
    ) -> None:
        """Step 8 (also for redeliveries, in case the first delivery died right after commit).
        `next_listed`: this attempt's listing showed a later turn's request."""
        has_next = self.chain_next(
            sid, index, only_if_lost=redelivered, tier=tier, next_listed=next_listed
        )
        if not has_next and not redelivered:
            TurnObservation.session_completed()
        result = result or self.services.repo.result(sid, index)
        if result is None:
            return
        effects = TurnEffects(self.services, sid, index)
        data = {
            "state": "succeeded",
            "image": result.image.model_dump(),
            "cost_usd": result.cost_usd,
        }
        now = datetime.now(UTC)
        effects.emit(make_event(EventKind.TURN_SUCCEEDED, sid, now, turn=index, data=data))
        if not has_next:
            effects.emit(make_event(EventKind.SESSION_COMPLETED, sid, now, turn=index))

    def chain_next(
        self,
        sid: str,
        index: int,
        *,
        only_if_lost: bool = False,
        tier: Tier | None = None,
        next_listed: bool = False,
    ) -> bool:
        """Enqueue turn n+1 on the session's tier if requested; True when it exists (the
        appender checks too).

        `next_listed`: the turn's listing already showed a later request, so n+1's exists
        (requests are numbered without gaps and never removed from a stored session) and is
        not read again; else it is looked up, as an append may have come in during the call.
        A redelivery chains only when n+1 has no live entry and no result, so duplicates of
        turn n do not multiply into duplicates of every later turn.
        """
        repo = self.services.repo
        if not next_listed and repo.request(sid, index + 1) is None:
            return False
        if only_if_lost and (
            index + 1 in self.services.coord.live(sid) or repo.is_committed(sid, index + 1)
        ):
            return True
        tier = tier or repo.session(sid).tier
        with tracing.new_trace():  # turn n+1 gets its own trace, linked to this one
            TurnEffects(self.services, sid, index + 1, tier.value).requeue(1, 0.0, None, None)
        return True


def response_cost(
    turn: Turn, response: ApiResponse, services: WorkerServices, tier: str = LANE_STANDARD
) -> float:
    """What a committed answer cost: its images at the table price plus its prompt tokens, at
    the price of the tier that billed it."""
    assert turn.snap is not None
    images = sum(1 for p in response.parts if p.image is not None and not p.thought)
    overrides = services.settings.price_overrides
    profile = profile_for(turn.snap.record.model)
    return turn_cost_usd(profile, turn.size, response.usage, overrides, images, tier)
