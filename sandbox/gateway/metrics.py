"""Every Prometheus metric the gateway exports, declared in one place.

Names and labels are the shared contract. Label values are bounded: ``route`` is one of two
paths, ``version`` a configured version (or ``none`` before routing), ``status_class``
2xx/4xx/5xx, ``tenant`` a configured tenant or ``other``. Latency histograms carry the request's
trace id as an exemplar (rendered in the OpenMetrics exposition only).

Phases of one request, back to back, so they add up to its end-to-end time: the label values
of ``sandbox_gateway_phase_seconds`` are ``sandbox.phases.GATEWAY_PHASES``, and the table there
says what each one measures. The gateway cannot see inside the engine: what it times around the
engine call is ``upstream.send``, ``upstream.first_token`` and ``upstream.stream``, never an
engine phase's name.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from sandbox.phases import GATEWAY_PHASES
from sandbox.service_metrics import ServiceMetrics

__all__ = [
    "GATEWAY_PHASES",
    "REJECTION_REASONS",
    "GatewayMetrics",
    "status_class",
]

REJECTION_REASONS: tuple[str, ...] = (
    "tokens",
    "sequences",
    "queue_full",
    "queue_timeout",
    "prompt_too_long",
)
FALLBACK_REASONS: tuple[str, ...] = ("timeout", "error")


def status_class(status: int) -> str:
    return f"{min(max(status // 100, 2), 5)}xx"


class GatewayMetrics(ServiceMetrics):
    """The gateway's metrics in a registry of their own (one per app, so tests can build many)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)

        # -- Latency --------------------------------------------------------------------
        self.phase_seconds = self.histogram(
            "sandbox_gateway_phase_seconds",
            "Time one request spent in one gateway phase (sandbox.phases), in seconds.",
            ["phase", "version", "tenant"],
        )
        self.request_duration_seconds = self.histogram(
            "sandbox_gateway_request_duration_seconds",
            "End-to-end time of one request at the gateway, from arrival to the last byte, in seconds.",
            ["route", "version", "status_class", "tenant"],
        )
        self.time_to_first_token_seconds = self.histogram(
            "sandbox_gateway_time_to_first_token_seconds",
            "Time from a streamed request's arrival to its first token relayed to the client, in seconds.",
            ["version", "tenant"],
        )

        # -- Traffic --------------------------------------------------------------------
        self.requests_total = self.counter(
            "sandbox_gateway_requests",
            "Number of completion requests answered, by route, version, status class and tenant.",
            ["route", "version", "status_class", "tenant"],
        )
        self.tokens_total = self.counter(
            "sandbox_gateway_tokens",
            "Number of tokens (prompt or completion) of the requests relayed, in tokens.",
            ["kind", "version", "tenant"],
        )
        self.rejections_total = self.counter(
            "sandbox_gateway_rejections",
            "Number of requests refused by admission control or input limits, by reason.",
            ["reason"],
        )
        self.retrieval_fallbacks_total = self.counter(
            "sandbox_gateway_retrieval_fallbacks",
            "Number of RAG requests answered without context because the retriever failed, by reason.",
            ["reason"],
        )
        self.upstream_errors_total = self.counter(
            "sandbox_gateway_upstream_errors",
            "Number of failed calls to an engine, by version and kind (connect, timeout, status).",
            ["version", "kind"],
        )
        self.shadow_requests_total = self.counter(
            "sandbox_gateway_shadow_requests",
            "Number of mirrored (shadow) requests, by version and outcome (ok, error, skipped).",
            ["version", "outcome"],
        )
        self.disconnects_total = self.counter(
            "sandbox_gateway_client_disconnects",
            "Number of requests whose client went away before the answer ended (upstream aborted).",
            ["route"],
        )

        # -- State ----------------------------------------------------------------------
        self.in_flight_requests = self.gauge(
            "sandbox_gateway_in_flight_requests",
            "Number of completion requests being served now.",
        )
        self.in_flight_tokens = self.gauge(
            "sandbox_gateway_in_flight_tokens",
            "Tokens (prompt + max_tokens) of the requests admitted now, in tokens.",
        )
        self.queue_depth = self.gauge(
            "sandbox_gateway_queue_depth",
            "Number of requests waiting for admission now.",
        )
        self.route_weight = self.gauge(
            "sandbox_gateway_route_weight",
            "Routing weight of a model version (relative, as configured).",
            ["version"],
        )
        self.ready_engines = self.gauge(
            "sandbox_gateway_ready_engines",
            "Number of engines of a version in rotation now.",
            ["version"],
        )

        for reason in REJECTION_REASONS:
            self.rejections_total.labels(reason=reason)
        for reason in FALLBACK_REASONS:
            self.retrieval_fallbacks_total.labels(reason=reason)
