"""Every Prometheus metric the load generator exports, declared in one place.

What the client saw, per tenant (a profile's tenant names: a small fixed set known at start-up).
``outcome`` is one of ``OUTCOMES``: ``ok`` (a complete answer), ``4xx``/``5xx`` (the server's
status; a refused or broken connection counts as ``5xx``: the service was not there),
``timeout`` (no complete answer within the profile's ``request_timeout_s``), ``cancelled`` (the
run stopped while it was in flight).

TTFT and TPOT exist for streaming requests only: a non-streaming answer arrives in one piece.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry

from sandbox.buckets import TOKEN_LATENCY_BUCKETS_S
from sandbox.service_metrics import ServiceMetrics

__all__ = ["OUTCOMES", "LoadgenMetrics"]

OUTCOMES: tuple[str, ...] = ("ok", "4xx", "5xx", "timeout", "cancelled")


class LoadgenMetrics(ServiceMetrics):
    """The generator's metrics in a registry of their own (tests build several)."""

    def __init__(self, tenants: Iterable[str], registry: CollectorRegistry | None = None) -> None:
        # Every series is per tenant: its children are bound below, one set per tenant.
        super().__init__(registry, common_labels=("tenant",))

        # -- Latency as the client sees it ------------------------------------------------
        self.time_to_first_token_seconds = self.histogram(
            "sandbox_loadgen_time_to_first_token_seconds",
            "Time from sending a streaming request to receiving its first token, in seconds.",
        )
        self.time_per_output_token_seconds = self.histogram(
            "sandbox_loadgen_time_per_output_token_seconds",
            "Mean time between output tokens after the first, per streaming request, in seconds.",
            buckets=TOKEN_LATENCY_BUCKETS_S,
        )
        self.e2e_request_latency_seconds = self.histogram(
            "sandbox_loadgen_e2e_request_latency_seconds",
            "Time from sending a request to receiving the end of its answer, in seconds.",
        )

        # -- Requests and tokens ---------------------------------------------------------
        self.requests_total = self.counter(
            "sandbox_loadgen_requests",
            "Requests finished, by tenant and outcome (ok, 4xx, 5xx, timeout, cancelled).",
            ["outcome"],
        )
        self.prompt_tokens_total = self.counter(
            "sandbox_loadgen_prompt_tokens",
            "Prompt tokens of finished requests, as the server reported them (or as sent), in tokens.",
        )
        self.output_tokens_total = self.counter(
            "sandbox_loadgen_output_tokens",
            "Output tokens received, in tokens.",
        )
        self.dropped_total = self.counter(
            "sandbox_loadgen_dropped_arrivals",
            "Scheduled arrivals not sent because max_in_flight requests were already running.",
        )

        # -- Now ---------------------------------------------------------------------------
        self.in_flight_requests = self.gauge(
            "sandbox_loadgen_in_flight_requests",
            "Requests sent and not yet finished, in requests.",
        )
        self.target_rate_per_second = self.gauge(
            "sandbox_loadgen_target_rate_per_second",
            "Arrival rate the schedule asks for now (base rate times shape; 0 when off), in requests per second.",
        )

        # Bind every label set at start-up: series exist (at 0) before the first request.
        self.tenants: dict[str, _Bound] = {}
        for tenant in tenants:
            self.bind(tenant)

    def bind(self, tenant: str) -> None:
        self.tenants[tenant] = _Bound(self, tenant)


class _Bound:
    """One tenant's children, so recording is a bare ``.observe()`` / ``.inc()``."""

    def __init__(self, m: LoadgenMetrics, tenant: str) -> None:
        self.ttft = m.time_to_first_token_seconds.labels(tenant)
        self.tpot = m.time_per_output_token_seconds.labels(tenant)
        self.e2e = m.e2e_request_latency_seconds.labels(tenant)
        self.outcome = {o: m.requests_total.labels(tenant, o) for o in OUTCOMES}
        self.prompt_tokens = m.prompt_tokens_total.labels(tenant)
        self.output_tokens = m.output_tokens_total.labels(tenant)
        self.dropped = m.dropped_total.labels(tenant)
        self.in_flight = m.in_flight_requests.labels(tenant)
        self.target_rate = m.target_rate_per_second.labels(tenant)
