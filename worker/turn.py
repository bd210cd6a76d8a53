"""One turn, start to finish: the steps of DESIGN.md "The turn task", each a small method."""

from __future__ import annotations

import dataclasses
import logging
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from shared import tracing
from shared.advice import raise_budget
from shared.broker import LANE_FLEX, LANE_STANDARD
from shared.catalog import profile_for
from shared.cost import turn_cost_usd
from shared.errors import BadRequest, EditQueueError, NoToken, PermanentError, TransientError
from shared.events import EventKind, make_event
from shared.failpoints import failpoint
from shared.history import check_fits, effective_size, estimate_tokens
from shared.interactions import InteractionGone, InteractionsClient
from shared.models import Tier, TurnResult
from shared.request_body import StreamingBody
from shared.responses import ApiResponse, ReturnedPart, check_response
from shared.runtime import Services
from shared.sessions import SessionSnapshot
from worker.effects import TurnEffects
from worker.observe import TurnObservation
from worker.results import build_result
from worker.retry_plan import GiveUp, Park, Requeue, flex_falls_back, plan_retry
from worker.spend import BudgetHold, budget_scopes
from worker.transport import Mode, Plan, chain_fields, fallback_plan, first_plan, orphaned

log = logging.getLogger("editqueue.turn")

BUSY_RETRY_S = 5.0
BUDGET_RECHECK_S = 900.0


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
    PARKED = "parked"
    THROTTLED = "throttled"  # the fleet's rate limit or in-flight cap said wait
    BUSY = "busy"
    FALLBACK = "fallback"  # a flex turn shed too often or past its deadline: now standard


class _Cancelled(PermanentError):
    """The session was cancelled while the turn was being prepared."""

    kind = "cancelled"


class _OverBudget(PermanentError):
    """The turn's price would pass a budget; it waits for the budget to be raised."""

    kind = "budget"


def delivery_owner(task_id: str | None) -> str:
    """A lease owner unique to one delivery of a task.

    Not the task id alone: duplicates of a turn share its deterministic id (a BUSY requeue, a
    chain sent by both a winner and a 412 loser), and a lease re-entrant for them would let both
    pay for the same turn at once.
    """
    return f"{task_id or 'task'}/{uuid.uuid4().hex[:12]}"


@dataclass
class TurnRunner:
    """Runs `run_turn(sid, n)` for one delivery; safe to run for duplicates and redeliveries."""

    services: Services
    owner: str
    rng: random.Random = field(default_factory=random.Random)
    lane: str = LANE_STANDARD  # the tier this delivery calls (and bills) at: standard or flex
    obs: TurnObservation = field(init=False)

    def run(self, sid: str, index: int, attempt: int) -> Outcome:
        """Steps 1-3, then one report of what this delivery did (log line, metrics)."""
        secret = TurnEffects.key_of(self.services)
        self.obs = TurnObservation(sid, index, attempt, secret=secret, tier=self.lane)
        try:
            outcome = self._run(sid, index, attempt)
        except BaseException as exc:  # the task shell requeues or fails it; say so here too
            self.obs.error = exc if isinstance(exc, EditQueueError) else self.obs.error
            self.obs.finish("error", self.services.repo)
            raise
        self.obs.finish(outcome, self.services.repo)
        return outcome

    def _run(self, sid: str, index: int, attempt: int) -> Outcome:
        """Steps 1-3: skip what is done or not ready, then run under the turn's lease."""
        repo = self.services.repo
        if repo.is_committed(sid, index):
            self.after_commit(sid, index, redelivered=True)
            return Outcome.ALREADY_DONE
        if repo.is_cancelled(sid):
            self.services.coord.clear_live(sid, index)
            return Outcome.CANCELLED
        if not repo.is_committed(sid, index - 1):
            return Outcome.NOT_READY
        lease = f"{sid}:{index}"
        # Outlives a healthy attempt; a crashed holder's lease expires before redelivery.
        if not self.services.coord.acquire_lease(lease, self.owner, self._ttl_s):
            self._effects(sid, index).requeue(attempt, BUSY_RETRY_S, None, None)
            return Outcome.BUSY
        try:
            return self._attempt(sid, index, attempt)
        finally:
            self.services.coord.release_lease(lease, self.owner)

    @property
    def _ttl_s(self) -> float:
        return self.services.settings.longest_task_s

    def _observe(self, snap: SessionSnapshot, index: int, attempt: int) -> None:
        """Make sure `obs` observes this turn (run() made it, unless a batch line commits)."""
        sid = snap.record.session_id
        current = getattr(self, "obs", None)
        if current is None or (current.sid, current.index) != (sid, index):
            secret = TurnEffects.key_of(self.services)
            self.obs = TurnObservation(sid, index, attempt, secret=secret, tier=self.lane)
            self.obs.loaded(snap, index)

    def _effects(self, sid: str, index: int) -> TurnEffects:
        return TurnEffects(self.services, sid, index, self.lane)

    def _attempt(self, sid: str, index: int, attempt: int) -> Outcome:
        """Steps 4-7 for a turn whose predecessor is committed."""
        with tracing.span("load history", editqueue__turn=index):
            snap = self.services.repo.snapshot(sid, through=index)
        request = snap.requests.get(index)
        if index in snap.results:
            self.after_commit(sid, index, snap.results[index], redelivered=True)
            return Outcome.ALREADY_DONE
        if request is None:
            return Outcome.NO_REQUEST
        self.obs.loaded(snap, index)
        failure = snap.failures.get(index)
        if failure and failure.request_revision == request.revision:
            return Outcome.FAILED  # a stale redelivery of a turn that already failed
        effects = self._effects(sid, index)
        effects.running(attempt)
        try:
            response, chosen, hold = self._call(snap, index)
        except EditQueueError as exc:
            self.obs.error = exc
            return self._not_called(snap, effects, attempt, exc)
        return self.commit(snap, index, attempt, response, chosen, hold)

    def _not_called(
        self, snap: SessionSnapshot, effects: TurnEffects, attempt: int, exc: EditQueueError
    ) -> Outcome:
        """The call was refused, deferred or failed: requeue, park or fail the turn."""
        index = effects.index
        revision = snap.requests[index].revision
        if isinstance(exc, NoToken):
            wait = min(self.services.settings.max_countdown_s, exc.wait_s + self.rng.random())
            self.obs.throttled(wait)
            effects.requeue(attempt, wait, None, "rate_limit")
            return Outcome.THROTTLED
        if isinstance(exc, _OverBudget):
            parks = snap.parks_so_far(index) + 1
            self.obs.park_until = time.time() + BUDGET_RECHECK_S
            effects.park(attempt, self.obs.park_until, "budget", exc, revision, parks)
            return Outcome.PARKED
        if isinstance(exc, TransientError):
            return self._after_transient(snap, effects, attempt, exc)
        assert isinstance(exc, PermanentError)
        return self._fail(effects, attempt, exc, revision)

    def _call(
        self, snap: SessionSnapshot, index: int
    ) -> tuple[ApiResponse, ReturnedPart, BudgetHold]:
        """Step 5-6: build the streamed body, check it fits, hold the budget, pass the gate."""
        record = snap.record
        profile = profile_for(record.model)
        plan = first_plan(snap, index, self.lane, datetime.now(UTC))
        body, tokens = self._fitted(snap, index, plan)
        size = effective_size(record, snap.requests[index])[1]
        overrides = self.services.settings.price_overrides
        price = turn_cost_usd(profile, size, {"promptTokenCount": tokens}, overrides, 1, self.lane)
        hold = BudgetHold(self.services.ledger, self.owner, budget_scopes(self.services.repo, snap))
        refused = hold.reserve(price)
        if refused is not None:
            todo = raise_budget(refused.name, refused.limit_usd, price, record.session_id, index)
            raise _OverBudget(f"budget {refused.name} of ${refused.limit_usd:.2f} reached; {todo}")
        try:
            response = self._send(snap, index, plan, body)
            failpoint(self.services.settings, "after_call")
        except BaseException:
            hold.settle(0.0)  # not billed
            raise
        try:
            return response, check_response(response), hold
        except BaseException:
            billed = turn_cost_usd(profile, size, response.usage, {}, 0, self.lane)
            self.obs.billed(billed)
            hold.settle(billed)
            raise

    def _fitted(self, snap: SessionSnapshot, index: int, plan: Plan) -> tuple[StreamingBody, int]:
        """The streamed body and token estimate of `plan`, refused when over a limit (the size
        guard sees only what is sent: a chain sends no history)."""
        record = snap.record
        profile = profile_for(record.model)
        body = StreamingBody(plan.payload, self.services.blobs.path)
        tokens = estimate_tokens(profile, plan.token_record(record), snap.requests, index)
        check_fits(profile, tokens, body.content_length, index, record.session_id)
        return body, tokens

    def _send(
        self, snap: SessionSnapshot, index: int, plan: Plan, body: StreamingBody
    ) -> ApiResponse:
        """The call, and its fallbacks (a gone chain is seeded; a refused seed is replayed)."""
        sid = snap.record.session_id
        sent = 0
        while True:
            sent += body.content_length
            try:
                response = self._gated_call(snap.record.model, sid, body, plan)
                return dataclasses.replace(response, upload_bytes=sent, transport=plan.mode.value)
            except (InteractionGone, BadRequest) as exc:
                fallback = fallback_plan(snap, index, plan, exc, self.lane)
                if fallback is None:
                    raise
                log.warning("turn %s/%d: %s; now %s from S3", sid, index, exc, fallback.mode)
                plan = fallback
                body, _ = self._fitted(snap, index, plan)

    def _gated_call(
        self, model: str, sid: str, body: StreamingBody, plan: Plan | None = None
    ) -> ApiResponse:
        # Nothing but the HTTP send may sit between admission and the call: the API counts a
        # call when it arrives, and a store round trip here made arrivals overflow the window.
        if self.services.repo.is_cancelled(sid):
            raise _Cancelled(f"session {sid} was cancelled")
        gate = self.services.gate
        wait = gate.admit(self.owner, self._ttl_s)
        if wait is not None:
            raise NoToken(f"call gate: wait {wait:.1f}s", wait_s=wait)
        try:
            if plan is None or not plan.interactions:
                return self.obs.call(lambda: self.services.api.generate(model, body))
            client = self._interactions()
            chained = plan.mode is Mode.CHAIN
            return self.obs.call(lambda: client.create(body, chained=chained))
        finally:
            gate.release(self.owner)

    def _interactions(self) -> InteractionsClient:
        client = self.services.interactions
        if client is None:
            raise PermanentError("this process has no Interactions API client configured")
        return client

    def commit(
        self,
        snap: SessionSnapshot,
        index: int,
        attempt: int,
        response: ApiResponse,
        chosen: ReturnedPart,
        hold: BudgetHold,
    ) -> Outcome:
        """Step 7: exact bytes to blobs, `result.json` once, then step 8."""
        sid = snap.record.session_id
        self._observe(snap, index, attempt)  # a batch wave's line commits without run()
        cost_usd = response_cost(snap, index, response, self.services, self.lane)
        self.obs.billed(cost_usd)
        try:
            with tracing.span("store blobs", editqueue__turn=index):
                result = build_result(
                    blobs=self.services.blobs,
                    record=snap.record,
                    request=snap.requests[index],
                    response=response,
                    chosen=chosen,
                    attempt=attempt,
                    now=datetime.now(UTC),
                    cost_usd=cost_usd,
                    previous=snap.results.get(index - 1),
                    tier=self.lane,
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
            self._interactions().delete(loser)
        TurnEffects(self.services, sid, index).done()
        if index in snap.parked:
            self.services.repo.unpark(sid, index)
        if won:
            self.obs.committed(snap, result, self.services.settings.quality)
        # Reported before anything can fail or kill us: the commit is what happened.
        self.obs.finish(Outcome.COMMITTED if won else Outcome.DUPLICATE, self.services.repo)
        failpoint(self.services.settings, "after_commit")
        self.after_commit(sid, index, winner, tier=snap.record.tier)
        return Outcome.COMMITTED if won else Outcome.DUPLICATE

    def after_commit(
        self,
        sid: str,
        index: int,
        result: TurnResult | None = None,
        *,
        redelivered: bool = False,
        tier: Tier | None = None,
    ) -> None:
        """Step 8 (also for redeliveries, in case the first delivery died right after commit)."""
        has_next = self.chain_next(sid, index, only_if_lost=redelivered, tier=tier)
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
        self, sid: str, index: int, *, only_if_lost: bool = False, tier: Tier | None = None
    ) -> bool:
        """Enqueue turn n+1 on the session's tier if requested; True when it exists (the
        appender checks too).

        A redelivery chains only when n+1 has no live entry and no result, so duplicates of
        turn n do not multiply into duplicates of every later turn.
        """
        repo = self.services.repo
        if repo.request(sid, index + 1) is None:
            return False
        if only_if_lost and (
            index + 1 in self.services.coord.live(sid) or repo.is_committed(sid, index + 1)
        ):
            return True
        tier = tier or repo.session(sid).tier
        with tracing.new_trace():  # turn n+1 gets its own trace, linked to this one
            TurnEffects(self.services, sid, index + 1, tier.value).requeue(1, 0.0, None, None)
        return True

    def _after_transient(
        self, snap: SessionSnapshot, effects: TurnEffects, attempt: int, exc: TransientError
    ) -> Outcome:
        index = effects.index
        revision = snap.requests[index].revision
        parks = snap.parks_so_far(index)  # counted where the sweep's unpark leaves it
        settings = self.services.settings
        if self.lane == LANE_FLEX and flex_falls_back(exc, attempt, settings):
            standard = TurnEffects(self.services, effects.sid, index, LANE_STANDARD)
            standard.requeue(attempt + 1, 0.0, exc, "flex_fallback")
            return Outcome.FALLBACK  # the attempt's log line says so (outcome=fallback)
        plan = plan_retry(exc, attempt, parks, settings, time.time(), self.rng)
        if isinstance(plan, Requeue):
            self.obs.retry_in_s = plan.countdown_s
            effects.requeue(attempt + 1, plan.countdown_s, exc, None)
            return Outcome.RETRY
        if isinstance(plan, Park):
            self.obs.park_until = plan.due_at
            effects.park(attempt + 1, plan.due_at, plan.reason, exc, revision, parks + 1)
            return Outcome.PARKED
        assert isinstance(plan, GiveUp)
        return self._fail(effects, attempt, exc, revision)

    def _fail(
        self,
        effects: TurnEffects,
        attempt: int,
        exc: PermanentError | TransientError,
        revision: int,
    ) -> Outcome:
        if isinstance(exc, _Cancelled):
            effects.done()
            return Outcome.CANCELLED
        effects.fail(attempt, exc, revision)
        return Outcome.FAILED


def response_cost(
    snap: SessionSnapshot,
    index: int,
    response: ApiResponse,
    services: Services,
    tier: str = LANE_STANDARD,
) -> float:
    """What a committed answer cost: its images at the table price plus its prompt tokens, at
    the price of the tier that billed it."""
    record = snap.record
    size = effective_size(record, snap.requests[index])[1]
    images = sum(1 for p in response.parts if p.image is not None and not p.thought)
    overrides = services.settings.price_overrides
    profile = profile_for(record.model)
    return turn_cost_usd(profile, size, response.usage, overrides, images, tier)
