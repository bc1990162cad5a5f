"""Every Prometheus metric the retriever exports, declared in one place.

Names are the shared contract. The retriever's work is the ``retrieval`` phase of the vocabulary
(``sandbox.phases``); its parts (embed, search, rerank) are *steps*, labelled ``step``. Labels are a
small fixed set bound at start-up, so recording is a bare ``.observe()``/``.inc()``. Latency
histograms carry the request's trace id as an exemplar; exemplars are only rendered in the
OpenMetrics exposition, which ``render`` picks when the scraper asks for it (Prometheus does).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from sandbox.phases import RETRIEVER_STEP_METRIC, RETRIEVER_STEPS
from sandbox.service_metrics import ServiceMetrics

__all__ = ["STATUS_CLASSES", "STEPS", "RetrieverMetrics"]

# The steps of the retrieval phase, in the order a request goes through them.
STEPS: tuple[str, ...] = RETRIEVER_STEPS

# Outcome of a /search call, as an HTTP status class.
STATUS_CLASSES: tuple[str, ...] = ("2xx", "4xx", "5xx")


class RetrieverMetrics(ServiceMetrics):
    """The retriever's metrics in a registry of their own (one per app, so tests can build many)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)

        # -- Latency --------------------------------------------------------------------
        self.step_seconds = self.histogram(
            RETRIEVER_STEP_METRIC,
            "Time spent in one step (embed, search, rerank) of a search, in seconds.",
            ["step"],
        )
        self.request_duration_seconds = self.histogram(
            "sandbox_retriever_request_duration_seconds",
            "Time to answer one /search call, from request to response, in seconds.",
        )

        # -- Traffic --------------------------------------------------------------------
        self.requests_total = self.counter(
            "sandbox_retriever_requests",  # the client appends _total
            "Number of /search calls answered, by HTTP status class (2xx, 4xx, 5xx).",
            ["status"],
        )

        # -- Faults ---------------------------------------------------------------------
        self.injected_delay_seconds = self.gauge(
            "sandbox_retriever_injected_delay_seconds",
            "Mean latency an active fault adds to one retrieval step, in seconds (0 when none).",
            ["step"],
        )

        # -- Index ----------------------------------------------------------------------
        self.index_passages = self.gauge(
            "sandbox_retriever_index_passages",
            "Number of passages (chunks) in the search index, 0 until it is built.",
        )
        self.startup_seconds = self.gauge(
            "sandbox_retriever_startup_seconds",
            "Time one start-up step took (model_load, index_build), in seconds.",
            ["step"],
        )

        # Bind every label value now: series exist from the first scrape (a zero rate is a
        # fact, a missing series is a question) and recording needs no label lookup.
        self.step = {step: self.step_seconds.labels(step=step) for step in STEPS}
        self.requests = {
            status: self.requests_total.labels(status=status) for status in STATUS_CLASSES
        }
        self.injected = {step: self.injected_delay_seconds.labels(step=step) for step in STEPS}
        for gauge in self.injected.values():
            gauge.set(0.0)
