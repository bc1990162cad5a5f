"""The base of every service's metrics class (gateway, retriever, load generator, autoscaler).

Each service keeps its metrics in a registry of its own, so tests can build many apps side by
side; a declaration then says only what differs: name, help, labels and, for a histogram,
buckets. Histograms default to ``LATENCY_BUCKETS_S`` on purpose: ``sandbox.buckets`` says why
the services' latencies must share their bucket edges.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from sandbox.buckets import LATENCY_BUCKETS_S

__all__ = ["ServiceMetrics"]


class ServiceMetrics:
    """A registry of its own (a new one unless given) and the metrics declared in it; each
    metric's labels are ``common_labels`` followed by its own."""

    def __init__(
        self, registry: CollectorRegistry | None = None, common_labels: Sequence[str] = ()
    ) -> None:
        self.registry = registry or CollectorRegistry()
        self.common_labels = tuple(common_labels)

    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
        return Counter(name, documentation, (*self.common_labels, *labels), registry=self.registry)

    def gauge(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
        return Gauge(name, documentation, (*self.common_labels, *labels), registry=self.registry)

    def histogram(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str] = (),
        *,
        buckets: Sequence[float] = LATENCY_BUCKETS_S,
    ) -> Histogram:
        return Histogram(
            name,
            documentation,
            (*self.common_labels, *labels),
            buckets=buckets,
            registry=self.registry,
        )
