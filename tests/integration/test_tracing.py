"""OpenTelemetry on the real stack: a producer and a Celery worker (threads pool, in this process
so an in-memory exporter sees both sides) on real Redis, moto's S3 server and the emulator.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from producer import api
from shared import runtime, tracing
from shared.broker import TASK_RUN_TURN, make_celery
from shared.config import Settings
from shared.models import SessionSpec, SessionState, TurnSpec
from tests.integration.services import Stack, wait_until

pytestmark = pytest.mark.integration

MODEL = "gemini-3.1-flash-image"
CHILD_SPANS = {"load history", f"generate_content {MODEL}", "store blobs", "commit"}


@pytest.fixture
def traced(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    for name, value in stack.env().items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    exporter = InMemorySpanExporter()
    reader = InMemoryMetricReader()
    assert tracing.setup(Settings(), "editqueue-test", span_exporter=exporter, metric_reader=reader)
    tracing.instrument_celery()
    exporter.reader = reader  # type: ignore[attr-defined]
    yield exporter
    CeleryInstrumentor().uninstrument()  # type: ignore[no-untyped-call]
    runtime.install(None)


def settings_for(stack: Stack) -> Settings:
    env = stack.env()
    return Settings(
        broker_url=stack.broker_url,
        store_url=env["EDITQUEUE_STORE_URL"],
        s3_endpoint_url=stack.s3_url,
        api_base_url=stack.emulator_url,
        GEMINI_API_KEY=env["GEMINI_API_KEY"],
        api_timeout_s=5,
        visibility_timeout_s=20,
        blob_cache_dir=str(stack.workdir / "otel-cache"),
    )


def metric_points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    found: dict[str, list[Any]] = defaultdict(list)
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found[metric.name].extend(metric.data.data_points)
    return found


def test_one_trace_per_turn_from_producer_through_broker_to_worker(
    stack: Stack, traced: InMemorySpanExporter, tmp_path: Path
) -> None:
    settings = settings_for(stack)
    services = runtime.build_services(settings)
    runtime.install(services)
    app = make_celery(settings, name="editqueue-worker")
    import worker.tasks  # noqa: F401  (registers run_turn on every app)

    spec = SessionSpec(image_size="512", turns=[TurnSpec(prompt="a room"), TurnSpec(prompt="x")])
    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False):
        sid = api.submit_session(services, spec, base_dir=tmp_path)
        wait_until(
            lambda: api.session_status(services, sid).state is SessionState.COMPLETED,
            60,
            "session done",
        )

    traces: dict[int, list[Any]] = defaultdict(list)
    for span in traced.get_finished_spans():
        traces[span.context.trace_id].append(span)
    runs = [s for s in traced.get_finished_spans() if s.name == f"run/{TASK_RUN_TURN}"]
    turn_traces = [traces[s.context.trace_id] for s in runs]
    assert len(runs) == 2 and len(traces) == 2, {k: [s.name for s in v] for k, v in traces.items()}
    for spans in turn_traces:
        names = {s.name for s in spans}
        assert {f"enqueue {TASK_RUN_TURN}", f"run/{TASK_RUN_TURN}"} | CHILD_SPANS <= names
        (root,) = [s for s in spans if s.parent is None]
        assert root.name == f"enqueue {TASK_RUN_TURN}"
        call = next(s for s in spans if s.name == f"generate_content {MODEL}")
        assert call.attributes["gen_ai.operation.name"] == "generate_content"
        assert call.attributes["gen_ai.request.model"] == MODEL
        assert call.attributes["gen_ai.usage.output_tokens"] > 0
    second_root = next(s for s in turn_traces[1] if s.parent is None)
    assert [link.context.trace_id for link in second_root.links] == [runs[0].context.trace_id]

    points = metric_points(traced.reader)  # type: ignore[attr-defined]
    assert sum(p.count for p in points["gen_ai.client.operation.duration"]) == 2
    kinds = {p.attributes["gen_ai.token.type"] for p in points["gen_ai.client.token.usage"]}
    assert kinds == {"input", "output"}
