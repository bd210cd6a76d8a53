"""Steps 5-6 of a turn (DESIGN.md "The turn task"): build the streamed body and check it fits,
hold the budget, pass the fleet's call gate, call (with the transport's fallbacks: a gone chain is
seeded, a refused seed is replayed from S3) and check the answer."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.catalog import profile_for, turn_cost_usd
from shared.errors import (
    BadRequest,
    InteractionGone,
    NoToken,
    OverBudget,
    PermanentError,
    raise_budget,
)
from shared.history import check_fits, effective_size, estimate_tokens
from shared.responses import ApiResponse, ReturnedPart, check_response
from shared.sessions import SessionSnapshot
from worker.failpoints import failpoint
from worker.interactions import InteractionsClient
from worker.observe import TurnObservation
from worker.request_body import StreamingBody
from worker.spend import BudgetHold, budget_scopes
from worker.transport import Mode, Plan, fallback_plan, first_plan
from worker.wiring import WorkerServices

log = logging.getLogger("editqueue.turn")


def interactions_of(services: WorkerServices) -> InteractionsClient:
    """The process's Interactions API client (refused when it has none)."""
    client = services.interactions
    if client is None:
        raise PermanentError("this process has no Interactions API client configured")
    return client


@dataclass
class Caller:
    """One attempt's call, for `TurnRunner` (its services, lease owner, lane and observation)."""

    services: WorkerServices
    owner: str
    lane: str
    obs: TurnObservation

    def call(
        self, snap: SessionSnapshot, index: int
    ) -> tuple[ApiResponse, ReturnedPart, BudgetHold]:
        """Steps 5-6 for turn n of `snap`: the answer, its image part and the budget hold."""
        record = snap.record
        size = effective_size(record, snap.requests[index])[1]
        profile = profile_for(record.model)
        plan = first_plan(snap, index, self.lane, datetime.now(UTC))
        body, tokens = self._fitted(snap, index, plan)
        overrides = self.services.settings.price_overrides
        usage = {"promptTokenCount": tokens}
        price = turn_cost_usd(profile, size, usage, overrides, 1, self.lane)
        hold = BudgetHold(self.services.ledger, self.owner, budget_scopes(self.services.repo, snap))
        refused = hold.reserve(price)
        if refused is not None:
            todo = raise_budget(refused.name, refused.limit_usd, price, record.session_id, index)
            raise OverBudget(f"budget {refused.name} of ${refused.limit_usd:.2f} reached; {todo}")
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
                response = self._gated_call(snap.record.model, body, plan)
                return dataclasses.replace(response, upload_bytes=sent, transport=plan.mode.value)
            except (InteractionGone, BadRequest) as exc:
                fallback = fallback_plan(snap, index, plan, exc, self.lane)
                if fallback is None:
                    raise
                log.warning("turn %s/%d: %s; now %s from S3", sid, index, exc, fallback.mode)
                plan = fallback
                body, _ = self._fitted(snap, index, plan)

    def _gated_call(self, model: str, body: StreamingBody, plan: Plan) -> ApiResponse:
        # Nothing but the HTTP send may sit between admission and the call: the API counts a
        # call when it arrives, and a store round trip here made arrivals overflow the window.
        # (A cancel is seen in the session's listing read at the start of the attempt.)
        gate = self.services.gate
        wait = gate.admit(self.owner, self.services.settings.longest_task_s)
        if wait is not None:
            raise NoToken(f"call gate: wait {wait:.1f}s", wait_s=wait)
        try:
            if not plan.interactions:
                return self.obs.call(lambda: self.services.gemini.generate(model, body))
            client = interactions_of(self.services)
            chained = plan.mode is Mode.CHAIN
            return self.obs.call(lambda: client.create(body, chained=chained))
        finally:
            gate.release(self.owner)
