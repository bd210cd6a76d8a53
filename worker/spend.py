"""Budget holds around one API call: reserve the turn's price first, settle what was billed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from shared.catalog import profile_for, turn_cost_usd
from shared.history import effective_size, estimate_tokens
from shared.keys import BATCH_SCOPE, batch_scope, session_scope
from shared.metrics import record_budget
from shared.sessions import SessionRepository, SessionSnapshot
from worker.budget import BudgetLedger


@dataclass(frozen=True)
class Scope:
    """One budget a turn spends from."""

    name: str
    limit_usd: float
    spent: Callable[[], float]


def budget_scopes(repo: SessionRepository, snap: SessionSnapshot) -> list[Scope]:
    """The session's own budget and its batch's, where set."""
    record = snap.record
    scopes = []
    if record.budget_usd is not None:
        session_spent = sum(r.cost_usd for r in snap.results.values())
        scopes.append(
            Scope(session_scope(record.session_id), record.budget_usd, lambda: session_spent)
        )
    if record.batch_id is not None:
        batch = repo.batch(record.batch_id)
        if batch.budget_usd is not None:

            def batch_spent() -> float:
                snaps = (repo.snapshot(sid) for sid in batch.session_ids)
                return sum(r.cost_usd for s in snaps for r in s.results.values())

            scopes.append(Scope(batch_scope(batch.batch_id), batch.budget_usd, batch_spent))
    return scopes


@dataclass
class BudgetHold:
    """Reservations held for one call; settle exactly once."""

    ledger: BudgetLedger
    owner: str
    scopes: list[Scope]
    held: list[Scope] = field(default_factory=list)

    def reserve(self, amount_usd: float) -> Scope | None:
        """Reserve in every scope; on refusal undo and return the scope that said no."""
        for scope in self.scopes:
            if not self.ledger.reserve(
                scope.name, self.owner, amount_usd, scope.limit_usd, scope.spent
            ):
                self.settle(0.0)
                return scope
            self.held.append(scope)
        return None

    def settle(self, actual_usd: float) -> None:
        """Release the reservations and record what was billed."""
        for scope in self.held:
            self.ledger.settle(scope.name, self.owner, actual_usd)
            if scope.name.startswith(BATCH_SCOPE):
                remaining = scope.limit_usd - self.ledger.spent(scope.name)
                record_budget(scope.name.removeprefix(BATCH_SCOPE), scope.limit_usd, remaining)
        self.held = []


def call_price(
    snap: SessionSnapshot, index: int, overrides: dict[str, dict[str, float]], tier: str
) -> float:
    """What turn n's call is reserved at: one image at its size plus the estimated prompt."""
    record = snap.record
    profile = profile_for(record.model)
    tokens = estimate_tokens(profile, record, snap.requests, index)
    size = effective_size(record, snap.requests[index])[1]
    return turn_cost_usd(profile, size, {"promptTokenCount": tokens}, overrides, 1, tier)
