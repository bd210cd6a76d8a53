"""Metric families, the token breakdown, and the dashboard and alerts naming only real series."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY, generate_latest

from shared import metrics

ROOT = Path(__file__).resolve().parents[2]
SUFFIXES = ("_total", "_bucket", "_sum", "_count", "_created")
EXTERNAL = {"up"}  # Prometheus' own


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (
            {
                "promptTokensDetails": [
                    {"modality": "TEXT", "tokenCount": 12},
                    {"modality": "IMAGE", "tokenCount": 1290},
                ],
                "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1120}],
                "thoughtsTokenCount": 200,
            },
            [
                ("input", "text", 12),
                ("input", "image", 1290),
                ("output", "image", 1120),
                ("thoughts", "text", 200),
            ],
        ),
        (
            {"promptTokenCount": 7, "candidatesTokenCount": 9},
            [("input", "all", 7), ("output", "all", 9)],
        ),
        ({"promptTokensDetails": [{"modality": "TEXT"}], "candidatesTokenCount": "x"}, []),
        ({}, []),
    ],
)
def test_token_counts_by_direction_and_modality(
    usage: dict[str, Any], expected: list[tuple[str, str, int]]
) -> None:
    assert list(metrics.token_counts(usage)) == expected


def test_quality_signals_are_fractions_and_ratios_become_deviations() -> None:
    numbers = {"ssim": 0.93, "scale": 1.02, "aspect": 0.99, "shift": 0.004, "sharpness": 41.0}

    signals = dict(metrics.quality_signals(numbers))

    assert signals == pytest.approx(
        {"ssim": 0.93, "shift": 0.004, "scale_deviation": 0.02, "aspect_deviation": 0.01}
    )


def exposed_names() -> set[str]:
    metrics.families()
    text = generate_latest(REGISTRY).decode()
    return set(re.findall(r"^# TYPE (\w+) ", text, re.MULTILINE))


def referenced(text: str) -> set[str]:
    names = set(re.findall(r"\b(editqueue_\w+)", text))
    for suffix in SUFFIXES:
        names = {n.removesuffix(suffix) for n in names}
    return names


def test_every_series_the_dashboard_and_alerts_query_is_one_editqueue_exposes() -> None:
    dashboard = json.loads((ROOT / "examples/grafana/editqueue.json").read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    alerts = (ROOT / "examples/prometheus/alerts.yml").read_text()
    exposed = {n.removesuffix("_total") for n in exposed_names()} | {"editqueue_queue_depth"}

    missing = (referenced("\n".join(queries)) | referenced(alerts)) - exposed

    assert missing == set()
    assert len(queries) >= 12


def test_no_family_has_a_session_label() -> None:
    families = metrics.families()
    labels = {
        label
        for field in dataclasses.fields(families)
        for label in getattr(families, field.name)._labelnames
    }
    assert "model" in labels and "batch" in labels
    assert not {label for label in labels if "session" in label}
