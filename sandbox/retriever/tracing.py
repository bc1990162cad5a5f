"""OpenTelemetry wiring for the retriever process, in one call.

``sandbox.telemetry`` (shared by every service) takes this over once it exists; until then
this sets up an SDK tracer provider that exports OTLP/HTTP to the local trace sink (or
nowhere). Spans are created either way, so logs and exemplars always carry a real trace id.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import context as otel_context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = ["exemplar_of", "extract_context", "setup_tracing"]

_PROPAGATOR = TraceContextTextMapPropagator()


def setup_tracing(service_name: str, otlp_endpoint: str | None) -> tuple[Tracer, TracerProvider]:
    """A tracer of this service's own provider (not the global one, so tests can build many)."""
    provider = TracerProvider(resource=Resource.create({"service.name": f"sandbox-{service_name}"}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # Half a second between exports: a drill shows a request's trace moments after it ends.
        exporter = OTLPSpanExporter(endpoint=otlp_endpoint, timeout=5)
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
    return provider.get_tracer("sandbox.retriever"), provider


def extract_context(headers: Mapping[str, str]) -> otel_context.Context:
    """The caller's trace context from a W3C ``traceparent`` header (an empty context without one)."""
    return _PROPAGATOR.extract(carrier=dict(headers))


def exemplar_of(span: Span) -> dict[str, str] | None:
    """The exemplar labels linking a histogram observation to ``span``'s trace."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None
    return {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x")}
