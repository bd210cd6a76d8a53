"""Tiers at submit: `--tier`, a spec's own `tier:`, and the refusal when the model lacks it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from click.testing import CliRunner, Result

from producer.cli import main
from producer.context import CliState
from shared.models import Tier
from shared.services import Services
from shared.storage import MemoryStore
from tests.lanes import LaneEnqueuer


def invoke(services: Services, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), obj=CliState(services=services))


def with_lanes(services: Services, **settings: object) -> Services:
    return dataclasses.replace(
        services,
        enqueuer=LaneEnqueuer(),
        settings=services.settings.model_copy(update=settings),
    )


def lanes(services: Services) -> list[tuple[str, int, str]]:
    assert isinstance(services.enqueuer, LaneEnqueuer)
    return [(sid, index, lane) for sid, index, _, lane in services.enqueuer.calls]


def test_submit_tier_flex_stores_the_tier_queues_on_the_flex_lane_and_status_shows_it(
    services: Services, tmp_path: Path
) -> None:
    services = with_lanes(services)
    spec = tmp_path / "s.jsonl"
    spec.write_text(
        '{"turns": [{"prompt": "a"}]}\n{"tier": "standard", "turns": [{"prompt": "b"}]}\n'
    )

    result = invoke(services, "submit", str(spec), "--tier", "flex")

    assert result.exit_code == 0, result.output
    flex, standard = result.stdout.split()
    assert services.repo.session(flex).tier is Tier.FLEX
    assert services.repo.session(standard).tier is Tier.STANDARD  # the spec's own tier wins
    assert lanes(services) == [(flex, 1, "flex"), (standard, 1, "standard")]
    shown = invoke(services, "status", flex, "--json")
    assert json.loads(shown.stdout)["tier"] == "flex"
    assert "tier flex" in invoke(services, "status", flex).stdout


def test_a_tier_the_model_lacks_is_refused_at_submit_naming_the_line_and_nothing_is_written(
    services: Services, tmp_path: Path
) -> None:
    services = with_lanes(services)
    spec = tmp_path / "s.jsonl"
    pro = '{"model": "gemini-3-pro-image", "turns": [{"prompt": "b"}]}'
    spec.write_text('{"turns": [{"prompt": "a"}]}\n' + pro + "\n")

    result = invoke(services, "submit", str(spec), "--tier", "flex")

    assert result.exit_code == 2
    assert f"{spec}:2: tier: model gemini-3-pro-image is not offered in the flex tier" in (
        result.stderr
    )
    assert "EDITQUEUE_TIER_OVERRIDES" in result.stderr
    store = services.repo.store
    assert isinstance(store, MemoryStore) and store.objects == {}
    assert lanes(services) == []


def test_the_tier_override_setting_opens_a_tier_for_a_model(
    services: Services, tmp_path: Path
) -> None:
    overrides = {"gemini-3-pro-image": ["standard", "flex"]}
    services = with_lanes(services, tier_overrides=overrides)
    spec = tmp_path / "s.yaml"
    spec.write_text("model: gemini-3-pro-image\ntier: flex\nturns:\n  - prompt: a\n")

    result = invoke(services, "submit", str(spec))

    assert result.exit_code == 0, result.output
    assert services.repo.session(result.stdout.strip()).tier is Tier.FLEX
    spec.write_text("model: gemini-3-pro-image\ntier: standard\nturns:\n  - prompt: a\n")
    assert invoke(services, "submit", str(spec), "--tier", "flex").exit_code == 0  # spec wins


def test_an_unknown_tier_is_a_usage_error(services: Services, tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("tier: cheap\nturns:\n  - prompt: a\n")
    result = invoke(services, "submit", str(spec))
    assert result.exit_code == 2
    assert ":1: tier: Input should be 'standard', 'flex' or 'batch', got 'cheap'" in result.stderr


def test_run_refuses_a_batch_tier_spec_before_starting_anything(
    services: Services, tmp_path: Path
) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("tier: batch\nturns:\n  - prompt: a\n")

    result = invoke(services, "run", str(spec), "--out", str(tmp_path / "out"))

    assert result.exit_code == 2
    assert f"{spec}:1: tier: batch runs in waves sent by the workers' sweep" in result.stderr
    assert not (tmp_path / "out").exists()
