"""Run by test_tracing.py in a child process (so the worker's shared tasks and the global OTel
providers stay out of the test process): a producer and an in-process Celery worker (threads) on
the stack in the environment, an in-memory span exporter and metric reader; prints what they saw
as JSON.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from celery.contrib.testing.worker import start_worker
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from producer import sessions, submission
from shared import tracing
from shared.broker import make_celery
from shared.config import load_settings
from shared.models import SessionState
from shared.services import APP_CORE_ATTR, build_services
from shared.session_spec import SessionSpec, TurnSpec
from tests.integration.services import wait_until


def span_doc(span: Any) -> dict[str, Any]:
    return {
        "name": span.name,
        "trace": format(span.context.trace_id, "032x"),
        "parent": span.parent is not None,
        "attributes": dict(span.attributes or {}),
        "links": [format(link.context.trace_id, "032x") for link in span.links],
    }


def metric_points(reader: InMemoryMetricReader) -> dict[str, list[dict[str, Any]]]:
    data = reader.get_metrics_data()
    found: dict[str, list[dict[str, Any]]] = {}
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points = found.setdefault(metric.name, [])
                for p in metric.data.data_points:
                    points.append({"count": getattr(p, "count", None), **dict(p.attributes)})
    return found


def main() -> None:
    settings = load_settings()
    exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
    assert tracing.setup(settings, "editqueue-test", span_exporter=exporter, metric_reader=reader)
    tracing.instrument_celery()
    services = build_services(settings)
    app = make_celery(settings, name="editqueue-worker")
    setattr(app, APP_CORE_ATTR, services)  # its tasks add the worker's pieces in-process
    import worker.tasks  # noqa: F401  (registers run_turn on every app)

    spec = SessionSpec(image_size="512", turns=[TurnSpec(prompt="a room"), TurnSpec(prompt="x")])
    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False):
        sid = submission.submit_session(services, spec, base_dir=Path(tempfile.gettempdir()))
        wait_until(
            lambda: sessions.session_status(services, sid).state is SessionState.COMPLETED,
            60,
            "session done",
        )
    spans = [span_doc(s) for s in exporter.get_finished_spans()]
    json.dump({"spans": spans, "metrics": metric_points(reader)}, sys.stdout)


if __name__ == "__main__":
    main()
