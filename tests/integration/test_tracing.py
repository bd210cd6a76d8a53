"""OpenTelemetry on the real stack: a producer and a Celery worker (threads pool, in one child
process so an in-memory exporter sees both sides) on real Redis, moto's S3 server and the
emulator. The child is `tests/integration/otel_run.py`; it prints the spans and metric points.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from shared.broker import TASK_RUN_TURN
from tests.integration.services import Stack

pytestmark = pytest.mark.integration

MODEL = "gemini-3.1-flash-image"
ENQUEUE, RUN = f"enqueue {TASK_RUN_TURN}", f"run/{TASK_RUN_TURN}"
CHILD_SPANS = {"load history", f"generate_content {MODEL}", "store blobs", "commit"}
ROOT = Path(__file__).resolve().parents[2]


def test_one_trace_per_turn_from_producer_through_broker_to_worker(stack: Stack) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tests.integration.otel_run"],
        env=stack.env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout)

    traces: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for span in seen["spans"]:
        traces[span["trace"]].append(span)
    runs = [s for s in seen["spans"] if s["name"] == RUN]
    assert len(runs) == 2 and len(traces) == 2, {
        k: [s["name"] for s in v] for k, v in traces.items()
    }
    for run in runs:
        spans = traces[run["trace"]]
        assert {ENQUEUE, RUN} | CHILD_SPANS <= {s["name"] for s in spans}
        (root,) = [s for s in spans if not s["parent"]]
        assert root["name"] == ENQUEUE
        call = next(s for s in spans if s["name"] == f"generate_content {MODEL}")["attributes"]
        assert call["gen_ai.operation.name"] == "generate_content"
        assert call["gen_ai.request.model"] == MODEL
        assert call["gen_ai.usage.input_tokens"] > 0 and call["gen_ai.usage.output_tokens"] > 0
    roots = {s["trace"]: s for s in seen["spans"] if not s["parent"]}
    first, second = (roots[r["trace"]] for r in runs)
    assert first["links"] == [] and second["links"] == [first["trace"]]

    points = seen["metrics"]
    assert sum(p["count"] for p in points["gen_ai.client.operation.duration"]) == 2
    kinds = {p["gen_ai.token.type"] for p in points["gen_ai.client.token.usage"]}
    assert kinds == {"input", "output"}
