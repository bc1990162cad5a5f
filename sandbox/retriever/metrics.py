"""Every Prometheus metric the retriever exports, declared in one place.

Names are the shared contract (see the phase vocabulary in ``docs/phases.md``). Labels are a
small fixed set bound at start-up, so recording is a bare ``.observe()``/``.inc()``. Latency
histograms carry the request's trace id as an exemplar; exemplars are only rendered in the
OpenMetrics exposition, which ``render`` picks when the scraper asks for it (Prometheus does).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from sandbox.buckets import LATENCY_BUCKETS_S

__all__ = ["PHASES", "STATUS_CLASSES", "RetrieverMetrics"]

# The retrieval parts, in the order a request goes through them.
PHASES: tuple[str, ...] = ("embed", "search", "rerank")

# Outcome of a /search call, as an HTTP status class.
STATUS_CLASSES: tuple[str, ...] = ("2xx", "4xx", "5xx")


class RetrieverMetrics:
    """The retriever's metrics in a registry of their own (one per app, so tests can build many)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()

        # -- Latency --------------------------------------------------------------------
        self.phase_seconds = Histogram(
            "sandbox_retriever_phase_seconds",
            "Time spent in one retrieval part (embed, search, rerank) of a search, in seconds.",
            ["phase"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.request_duration_seconds = Histogram(
            "sandbox_retriever_request_duration_seconds",
            "Time to answer one /search call, from request to response, in seconds.",
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )

        # -- Traffic --------------------------------------------------------------------
        self.requests_total = Counter(
            "sandbox_retriever_requests",  # the client appends _total
            "Number of /search calls answered, by HTTP status class (2xx, 4xx, 5xx).",
            ["status"],
            registry=self.registry,
        )

        # -- Faults ---------------------------------------------------------------------
        self.injected_delay_seconds = Gauge(
            "sandbox_retriever_injected_delay_seconds",
            "Mean latency an active fault adds to one retrieval part, in seconds (0 when none).",
            ["phase"],
            registry=self.registry,
        )

        # -- Index ----------------------------------------------------------------------
        self.index_passages = Gauge(
            "sandbox_retriever_index_passages",
            "Number of passages (chunks) in the search index, 0 until it is built.",
            registry=self.registry,
        )
        self.startup_seconds = Gauge(
            "sandbox_retriever_startup_seconds",
            "Time one start-up step took (model_load, index_build), in seconds.",
            ["step"],
            registry=self.registry,
        )

        # Bind every label value now: series exist from the first scrape (a zero rate is a
        # fact, a missing series is a question) and recording needs no label lookup.
        self.phase = {phase: self.phase_seconds.labels(phase=phase) for phase in PHASES}
        self.requests = {
            status: self.requests_total.labels(status=status) for status in STATUS_CLASSES
        }
        self.injected = {phase: self.injected_delay_seconds.labels(phase=phase) for phase in PHASES}
        for gauge in self.injected.values():
            gauge.set(0.0)
