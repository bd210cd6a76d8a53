"""Telemetry: log records (plain text or JSON lines) and OpenTelemetry traces and GenAI metrics.

`EDITQUEUE_LOG_FORMAT=json` makes each log record a JSON object with an ISO-8601 UTC `timestamp`,
`levelname`, `name`, `message` and the record's extra fields (the per-attempt turn line carries
session_id, turn, attempt, outcome, latency_s, tokens, cost_usd, reason ...).

Traces and GenAI client metrics are optional, off unless OTEL_* variables ask.

Without the `otel` extra installed every helper here is a no-op; installed but not configured,
the API's default providers make spans non-recording. `setup` installs the SDK's providers with
the exporter the standard variables name (OTLP over HTTP, or console); it must run after a
prefork pool forked (its exporter threads do not survive a fork): see `worker/observe_signals.py`.

One trace per turn: the producer's `enqueue turn` span is the root, its context travels in the
message headers, the worker's spans (Celery's `run/…`, then ours) continue it, retries of the
turn stay in it, and chaining turn n+1 starts a new trace linked to turn n (`new_trace`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from shared.config import Settings

log = logging.getLogger("editqueue.tracing")

try:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics as otel_metrics
    from opentelemetry import propagate, trace
except ImportError:  # the `otel` extra is not installed
    trace = None  # type: ignore[assignment]

TRACER = "editqueue"
LINK_KEY = "editqueue.link"
# GenAI semantic conventions (Development status): metric names, units and bucket advice.
OPERATION = "generate_content"
PROVIDER = "gcp.gemini"
DURATION_BUCKETS_S = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
TOKEN_BUCKETS = tuple(4**k for k in range(14))  # 1 .. 67,108,864

_instruments: dict[str, Any] = {}


def available() -> bool:
    """True when the `otel` extra is installed."""
    return trace is not None


def setup(
    settings: Settings, service: str, *, span_exporter: Any = None, metric_reader: Any = None
) -> bool:
    """Install tracer and meter providers when configured (or given exporters, for tests)."""
    exporter = settings.otel_exporter
    if trace is None or (exporter is None and span_exporter is None):
        return False
    _install_providers(
        settings.otel_service_name or service, exporter, span_exporter, metric_reader
    )
    _instruments.clear()
    return True


def instrument_celery() -> None:
    """Trace task runs (Celery's `run/{task}` spans continue the producer's trace)."""
    if trace is None:
        return
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    instrumentor = CeleryInstrumentor()  # type: ignore[no-untyped-call]
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


@contextlib.contextmanager
def span(name: str, **attributes: Any) -> Iterator[Any]:
    """A child span of the current one (a no-op without the extra)."""
    if trace is None:
        yield None
        return
    attrs = {k.replace("__", "."): v for k, v in attributes.items() if v is not None}
    with trace.get_tracer(TRACER).start_as_current_span(name, attributes=attrs) as current:
        yield current


@contextlib.contextmanager
def new_trace() -> Iterator[None]:
    """Whatever starts inside starts a new trace, linked to the current span (the next turn)."""
    if trace is None:
        yield
        return
    parent = trace.get_current_span().get_span_context()
    # An empty context (no current span) that remembers what to link to.
    token = otel_context.attach(otel_context.set_value(LINK_KEY, parent, otel_context.Context()))
    try:
        yield
    finally:
        otel_context.detach(token)


@contextlib.contextmanager
def producer_span(name: str, headers: dict[str, str], **attributes: Any) -> Iterator[None]:
    """The root span of a turn's trace; its context goes into `headers` for the worker."""
    if trace is None:
        yield
        return
    linked = otel_context.get_value(LINK_KEY)
    links = (
        [trace.Link(linked)] if isinstance(linked, trace.SpanContext) and linked.is_valid else []
    )
    attrs = {k.replace("__", "."): v for k, v in attributes.items() if v is not None}
    tracer = trace.get_tracer(TRACER)
    with tracer.start_as_current_span(
        name, kind=trace.SpanKind.PRODUCER, attributes=attrs, links=links
    ):
        propagate.inject(headers)
        yield


def set_attributes(current: Any, **attributes: Any) -> None:
    """Add attributes to a span from `span()` (None values are left out)."""
    if current is not None:
        for key, value in attributes.items():
            if value is not None:
                current.set_attribute(key.replace("__", "."), value)


def record_genai(
    model: str,
    duration_s: float,
    error_type: str | None,
    input_tokens: int | None,
    output_tokens: int | None,
) -> None:
    """gen_ai.client.operation.duration and gen_ai.client.token.usage for one call."""
    if trace is None:
        return
    duration, tokens = _genai_instruments()
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": OPERATION,
        "gen_ai.provider.name": PROVIDER,
        "gen_ai.request.model": model,
    }
    duration.record(duration_s, {**attrs, **({"error.type": error_type} if error_type else {})})
    for kind, count in (("input", input_tokens), ("output", output_tokens)):
        if count is not None:
            tokens.record(count, {**attrs, "gen_ai.token.type": kind})


def _genai_instruments() -> tuple[Any, Any]:
    if not _instruments:
        meter = otel_metrics.get_meter(TRACER)
        _instruments["duration"] = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS_S),
        )
        _instruments["tokens"] = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Measures number of input and output tokens used",
            explicit_bucket_boundaries_advisory=[float(b) for b in TOKEN_BUCKETS],
        )
    return _instruments["duration"], _instruments["tokens"]


def _exporters(exporter: str | None) -> tuple[Any, Any]:
    """(span exporter, metric exporter) for `OTEL_EXPORTER`: `console`, else OTLP over HTTP."""
    if exporter == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(), ConsoleMetricExporter()
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(), OTLPMetricExporter()


def _install_providers(
    service: str, exporter: str | None, span_exporter: Any = None, metric_reader: Any = None
) -> None:
    """Global tracer and meter providers (the SDK, imported only here); given exporters (tests)
    are used as they are. The SDK itself reads the other standard variables (OTEL_SERVICE_NAME,
    OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_ENDPOINT and _HEADERS ...)."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    resource = Resource.create({SERVICE_NAME: service})
    tracer_provider = TracerProvider(resource=resource)
    if span_exporter is not None:
        tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
        readers = [metric_reader] if metric_reader is not None else []
    else:
        spans, points = _exporters(exporter)
        tracer_provider.add_span_processor(BatchSpanProcessor(spans))
        readers = [PeriodicExportingMetricReader(points)]
    trace.set_tracer_provider(tracer_provider)
    otel_metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
JSON_FIELDS = "%(levelname)s %(name)s %(message)s"


def log_formatter(log_format: str) -> logging.Formatter:
    """The formatter for `text` or `json`."""
    if log_format == "json":
        return JsonFormatter(JSON_FIELDS, timestamp=True)
    return logging.Formatter(TEXT_FORMAT)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """editqueue's root handler (so configuring again replaces it, and nothing else)."""


def configure_logs(settings: Settings, level: int = logging.INFO) -> None:
    """editqueue's handler on the root logger, in the configured format."""
    handler = _Handler()
    handler.setFormatter(log_formatter(settings.log_format))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
