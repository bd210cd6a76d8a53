"""Which tier each session of a submission buys, refused at submit when its model lacks it."""

from __future__ import annotations

from collections.abc import Sequence

from producer.specs import LoadedSpec
from shared.catalog import model_tiers
from shared.config import Settings
from shared.errors import InvalidSpec
from shared.models import Tier


def tier_problem(model: str, tier: Tier, settings: Settings) -> str | None:
    """Why `model` cannot run at `tier` (None when it can)."""
    offered = model_tiers(model, settings.tier_overrides)
    if tier.value in offered:
        return None
    return (
        f"tier: model {model} is not offered in the {tier.value} tier (it has: "
        f"{', '.join(offered)}); pick one of those (submit --tier), another model, or set "
        f"EDITQUEUE_TIER_OVERRIDES if Google now sells it"
    )


def check_tiers(settings: Settings, items: Sequence[LoadedSpec], tiers: Sequence[Tier]) -> None:
    """InvalidSpec naming every session (file:line) whose model is not sold at its tier."""
    problems = []
    for item, tier in zip(items, tiers, strict=True):
        problem = tier_problem(item.spec.model or settings.model, tier, settings)
        if problem is not None:
            problems.append(f"{item.source}: {problem}")
    if problems:
        raise InvalidSpec("\n".join(problems))
