"""Every metric the autoscaler exports, in one place (scraped as job `autoscaler`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from sandbox.buckets import STARTUP_BUCKETS_S

__all__ = ["AutoscalerMetrics"]


class AutoscalerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry

        # -- Replicas --
        self.desired = Gauge(
            "sandbox_autoscaler_desired_replicas",
            "Replicas the autoscaler wants after its last decision, in replicas.",
            registry=r,
        )
        self.starting = Gauge(
            "sandbox_autoscaler_starting_replicas",
            "Replicas started but not ready yet, in replicas.",
            registry=r,
        )
        self.ready = Gauge(
            "sandbox_autoscaler_ready_replicas",
            "Replicas ready and in rotation, in replicas.",
            registry=r,
        )
        self.min_replicas = Gauge(
            "sandbox_autoscaler_min_replicas",
            "The warm minimum the autoscaler keeps, in replicas.",
            registry=r,
        )
        self.max_replicas = Gauge(
            "sandbox_autoscaler_max_replicas",
            "The ceiling of the autoscaler, in replicas.",
            registry=r,
        )

        # -- Signal --
        self.signal_value = Gauge(
            "sandbox_autoscaler_signal_value",
            "Last value of the scaling signal per ready replica, in the signal's unit (NaN: no value).",
            registry=r,
        )
        self.signal_target = Gauge(
            "sandbox_autoscaler_signal_target",
            "Target of the scaling signal per replica, in the signal's unit.",
            registry=r,
        )
        self.signal_info = Gauge(
            "sandbox_autoscaler_signal_info",
            "Which signal the autoscaler scales on (1 for the current one).",
            ["signal"],
            registry=r,
        )
        self.readiness_gating = Gauge(
            "sandbox_autoscaler_readiness_gating",
            "1 when new replicas get traffic only once ready, 0 when gating is off.",
            registry=r,
        )

        # -- Decisions and start-ups --
        self.decisions = Counter(
            "sandbox_autoscaler_decisions_total",
            "Scaling decisions by direction (up, down, none), in decisions.",
            ["direction"],
            registry=r,
        )
        self.scale_up_to_ready = Histogram(
            "sandbox_autoscaler_scale_up_to_ready_seconds",
            "Time from a scale-up decision to the new replica being ready, in seconds.",
            buckets=STARTUP_BUCKETS_S,
            registry=r,
        )
        self.replica_failures = Counter(
            "sandbox_autoscaler_replica_failures_total",
            "Replicas that failed, by reason (exited, deadline, died), in replicas.",
            ["reason"],
            registry=r,
        )
        for direction in ("up", "down", "none"):
            self.decisions.labels(direction)
        for reason in ("exited", "deadline", "died"):
            self.replica_failures.labels(reason)
