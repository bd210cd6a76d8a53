"""The OpenTelemetry SDK side of `shared/tracing.py`: providers and exporters (the `otel` extra).

The SDK itself reads the other standard variables (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
OTEL_EXPORTER_OTLP_ENDPOINT and _HEADERS ...).
"""

from __future__ import annotations

from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)


def _exporters(exporter: str | None) -> tuple[SpanExporter, Any]:
    if exporter == "console":
        return ConsoleSpanExporter(), ConsoleMetricExporter()
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(), OTLPMetricExporter()


def install_providers(
    service: str, exporter: str | None, span_exporter: Any = None, metric_reader: Any = None
) -> None:
    """Global tracer and meter providers; given exporters (tests) are used as they are."""
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
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))
