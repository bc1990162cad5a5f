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

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from sandbox.buckets import LATENCY_BUCKETS_S
from sandbox.phases import GATEWAY_PHASES

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


class GatewayMetrics:
    """The gateway's metrics in a registry of their own (one per app, so tests can build many)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry

        # -- Latency --------------------------------------------------------------------
        self.phase_seconds = Histogram(
            "sandbox_gateway_phase_seconds",
            "Time one request spent in one gateway phase (sandbox.phases), in seconds.",
            ["phase", "version", "tenant"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.request_duration_seconds = Histogram(
            "sandbox_gateway_request_duration_seconds",
            "End-to-end time of one request at the gateway, from arrival to the last byte, in seconds.",
            ["route", "version", "status_class", "tenant"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.time_to_first_token_seconds = Histogram(
            "sandbox_gateway_time_to_first_token_seconds",
            "Time from a streamed request's arrival to its first token relayed to the client, in seconds.",
            ["version", "tenant"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )

        # -- Traffic --------------------------------------------------------------------
        self.requests_total = Counter(
            "sandbox_gateway_requests",
            "Number of completion requests answered, by route, version, status class and tenant.",
            ["route", "version", "status_class", "tenant"],
            registry=r,
        )
        self.tokens_total = Counter(
            "sandbox_gateway_tokens",
            "Number of tokens (prompt or completion) of the requests relayed, in tokens.",
            ["kind", "version", "tenant"],
            registry=r,
        )
        self.rejections_total = Counter(
            "sandbox_gateway_rejections",
            "Number of requests refused by admission control or input limits, by reason.",
            ["reason"],
            registry=r,
        )
        self.retrieval_fallbacks_total = Counter(
            "sandbox_gateway_retrieval_fallbacks",
            "Number of RAG requests answered without context because the retriever failed, by reason.",
            ["reason"],
            registry=r,
        )
        self.upstream_errors_total = Counter(
            "sandbox_gateway_upstream_errors",
            "Number of failed calls to an engine, by version and kind (connect, timeout, status).",
            ["version", "kind"],
            registry=r,
        )
        self.shadow_requests_total = Counter(
            "sandbox_gateway_shadow_requests",
            "Number of mirrored (shadow) requests, by version and outcome (ok, error, skipped).",
            ["version", "outcome"],
            registry=r,
        )
        self.disconnects_total = Counter(
            "sandbox_gateway_client_disconnects",
            "Number of requests whose client went away before the answer ended (upstream aborted).",
            ["route"],
            registry=r,
        )

        # -- State ----------------------------------------------------------------------
        self.in_flight_requests = Gauge(
            "sandbox_gateway_in_flight_requests",
            "Number of completion requests being served now.",
            registry=r,
        )
        self.in_flight_tokens = Gauge(
            "sandbox_gateway_in_flight_tokens",
            "Tokens (prompt + max_tokens) of the requests admitted now, in tokens.",
            registry=r,
        )
        self.queue_depth = Gauge(
            "sandbox_gateway_queue_depth",
            "Number of requests waiting for admission now.",
            registry=r,
        )
        self.route_weight = Gauge(
            "sandbox_gateway_route_weight",
            "Routing weight of a model version (relative, as configured).",
            ["version"],
            registry=r,
        )
        self.ready_engines = Gauge(
            "sandbox_gateway_ready_engines",
            "Number of engines of a version in rotation now.",
            ["version"],
            registry=r,
        )

        for reason in REJECTION_REASONS:
            self.rejections_total.labels(reason=reason)
        for reason in FALLBACK_REASONS:
            self.retrieval_fallbacks_total.labels(reason=reason)
