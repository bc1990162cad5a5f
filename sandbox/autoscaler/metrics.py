"""Every metric the autoscaler exports, in one place (scraped as job `autoscaler`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from sandbox.buckets import STARTUP_BUCKETS_S
from sandbox.service_metrics import ServiceMetrics

__all__ = ["AutoscalerMetrics"]


class AutoscalerMetrics(ServiceMetrics):
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)

        # -- Replicas --
        self.desired = self.gauge(
            "sandbox_autoscaler_desired_replicas",
            "Replicas the autoscaler wants after its last decision, in replicas.",
        )
        self.starting = self.gauge(
            "sandbox_autoscaler_starting_replicas",
            "Replicas started but not ready yet, in replicas.",
        )
        self.ready = self.gauge(
            "sandbox_autoscaler_ready_replicas",
            "Replicas ready and in rotation, in replicas.",
        )
        self.min_replicas = self.gauge(
            "sandbox_autoscaler_min_replicas",
            "The warm minimum the autoscaler keeps, in replicas.",
        )
        self.max_replicas = self.gauge(
            "sandbox_autoscaler_max_replicas",
            "The ceiling of the autoscaler, in replicas.",
        )

        # -- Signal --
        self.signal_value = self.gauge(
            "sandbox_autoscaler_signal_value",
            "Last value of the scaling signal per ready replica, in the signal's unit (NaN: no value).",
        )
        self.signal_target = self.gauge(
            "sandbox_autoscaler_signal_target",
            "Target of the scaling signal per replica, in the signal's unit.",
        )
        self.signal_info = self.gauge(
            "sandbox_autoscaler_signal_info",
            "Which signal the autoscaler scales on (1 for the current one).",
            ["signal"],
        )
        self.readiness_gating = self.gauge(
            "sandbox_autoscaler_readiness_gating",
            "1 when new replicas get traffic only once ready, 0 when gating is off.",
        )

        # -- Decisions and start-ups --
        self.decisions = self.counter(
            "sandbox_autoscaler_decisions_total",
            "Scaling decisions by direction (up, down, none), in decisions.",
            ["direction"],
        )
        self.scale_up_to_ready = self.histogram(
            "sandbox_autoscaler_scale_up_to_ready_seconds",
            "Time from a scale-up decision to the new replica being ready, in seconds.",
            buckets=STARTUP_BUCKETS_S,
        )
        self.replica_failures = self.counter(
            "sandbox_autoscaler_replica_failures_total",
            "Replicas that failed, by reason (exited, deadline, died), in replicas.",
            ["reason"],
        )
        for direction in ("up", "down", "none"):
            self.decisions.labels(direction)
        for reason in ("exited", "deadline", "died"):
            self.replica_failures.labels(reason)
