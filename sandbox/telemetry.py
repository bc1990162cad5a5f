"""Telemetry wiring every sandbox service shares (gateway, retriever, loadgen).

Two jobs, one small API:

* **Traces**: ``configure_tracing("gateway", settings)`` builds an OpenTelemetry SDK tracer
  provider whose spans leave through a ``BatchSpanProcessor`` and the OTLP/HTTP exporter. Where
  they go, first match wins:

  1. the ``endpoint`` argument (a service's ``--otlp-endpoint`` flag; ``""`` or ``"none"``
     turns export off);
  2. the standard variables: ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none`` turn
     export off; ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_ENDPOINT`` are
     honoured by the exporter itself (compose points them at the OTel Collector);
  3. the local trace sink from ``Settings``: ``http://<host>:<trace_sink_port>/v1/traces``;
  4. without settings either, no export.

  Spans are created in every case, so exemplars and logs always carry a real trace id. A sink
  that is down costs a logged export error and nothing else: export happens on the processor's
  thread, with a short timeout, and never blocks or fails a request.

* **Metrics**: ``render_metrics`` answers a scrape in the format the scraper asked for;
  OpenMetrics (what Prometheus asks for) is the only one that carries histogram exemplars
  (``{trace_id="...",span_id="..."}``), the link from a slow bucket to its trace.

Trace propagation is W3C ``traceparent``: ``extract_context`` reads it from incoming headers,
``inject_context`` writes it into outgoing ones.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_CONTENT_TYPE
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

if TYPE_CHECKING:
    from sandbox.settings import Settings

__all__ = [
    "EXPORT_TIMEOUT_S",
    "JsonLogFormatter",
    "Tracing",
    "configure_logging",
    "configure_tracing",
    "exemplar_of",
    "extract_context",
    "inject_context",
    "render_metrics",
    "serve_app",
    "trace_endpoint",
    "trace_id_of",
]

# One export may take this long before it is dropped: a sink that hangs must not pile up spans.
EXPORT_TIMEOUT_S = 3.0
# Between exports: a learner sees a request's trace a moment after it ends.
EXPORT_DELAY_MS = 500

_PROPAGATOR = TraceContextTextMapPropagator()
_OFF = {"", "none", "off", "false"}


class _HashedResource(Resource):
    """A resource whose hash is computed once. The OTLP encoder groups every exported span by its
    resource, and ``Resource.__hash__`` JSON-encodes all the attributes each time (seven times
    per gateway request); a resource's attributes cannot change, so neither can its hash."""

    def __init__(self, resource: Resource) -> None:
        super().__init__(resource.attributes, resource.schema_url)
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash


@dataclass(frozen=True)
class Tracing:
    """A service's tracer and the provider behind it (``shutdown`` flushes pending spans)."""

    provider: TracerProvider
    tracer: Tracer
    endpoint: str | None  # where spans go; None when they are not exported

    def shutdown(self) -> None:
        self.provider.shutdown()

    def flush(self, timeout_s: float = 5.0) -> bool:
        return self.provider.force_flush(int(timeout_s * 1000))


def trace_endpoint(settings: Settings | None, endpoint: str | None = None) -> str | None:
    """Where spans are exported (see the module docstring for the order); None = nowhere."""
    if endpoint is not None:
        return None if endpoint.strip().lower() in _OFF else endpoint
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() in _OFF:
        return None
    if os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces"
    if settings is not None:
        return f"{settings.url(settings.trace_sink_port)}/v1/traces"
    return None


def configure_tracing(
    service_name: str,
    settings: Settings | None = None,
    *,
    endpoint: str | None = None,
    set_global: bool = False,
) -> Tracing:
    """A tracer provider for one service, exporting OTLP/HTTP in batches.

    The provider is the service's own (not the global one) unless ``set_global``: tests build
    many apps in one process, and each must export to its own sink.
    """
    resource = _HashedResource(
        Resource.create({"service.name": f"sandbox-{service_name}", "service.namespace": "sandbox"})
    )
    provider = TracerProvider(resource=resource)
    target = trace_endpoint(settings, endpoint)
    if target is not None:
        # Imported here: a service that exports nothing does not pay for requests/protobuf.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=target, timeout=EXPORT_TIMEOUT_S)
        provider.add_span_processor(
            BatchSpanProcessor(
                exporter,
                schedule_delay_millis=EXPORT_DELAY_MS,
                export_timeout_millis=int(EXPORT_TIMEOUT_S * 1000),
            )
        )
    if set_global:
        from opentelemetry import trace

        trace.set_tracer_provider(provider)
    return Tracing(provider, provider.get_tracer(f"sandbox.{service_name}"), target)


# -- Propagation --------------------------------------------------------------------------


def extract_context(headers: Mapping[str, str]) -> otel_context.Context:
    """The caller's trace context from a W3C ``traceparent`` header (empty without one)."""
    return _PROPAGATOR.extract(carrier={k.lower(): v for k, v in headers.items()})


def inject_context(
    headers: MutableMapping[str, str], context: otel_context.Context | None = None
) -> MutableMapping[str, str]:
    """Add ``traceparent`` (and ``tracestate``) for ``context`` (the current one by default)."""
    _PROPAGATOR.inject(headers, context=context)
    return headers


def trace_id_of(span: Span) -> str | None:
    ctx = span.get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def exemplar_of(span: Span) -> dict[str, str] | None:
    """Exemplar labels linking a histogram observation to ``span``'s trace (None if unsampled)."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None
    return {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x")}


# -- Metrics exposition ---------------------------------------------------------------------


def render_metrics(
    registry: CollectorRegistry, accept: str | None, openmetrics: bool = False
) -> tuple[bytes, str]:
    """The exposition the scraper asked for; ``openmetrics`` forces the format with exemplars."""
    if openmetrics:
        return generate_openmetrics(registry), OPENMETRICS_CONTENT_TYPE
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


# -- Logs -------------------------------------------------------------------------------------

# Fields every LogRecord has; anything else came from ``extra=`` and becomes a field of its own.
_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line, with the current trace id (unless ``extra`` gives one)."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ctx = otel_trace.get_current_span().get_span_context()
        if ctx.is_valid:
            entry["trace_id"] = format(ctx.trace_id, "032x")
        entry.update({k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def serve_app(app: Any, host: str, port: int, **uvicorn_options: Any) -> None:
    """Run a service's ASGI app with uvicorn: no access log (its spans and metrics record each
    request) and uvicorn's own records left to ``configure_logging`` (``log_config=None``)."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, access_log=False, log_config=None, **uvicorn_options)


def configure_logging(service: str, level: int = logging.INFO) -> None:
    """Send every log record (uvicorn's included) to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
