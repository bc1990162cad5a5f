"""The control loop: observe, decide (``policy``), act through the deployment layer, report.

One ``tick``: re-read the options file if it changed, advance the replicas (``Deployer.poll``:
readiness, deadlines, drains), count ready and starting replicas of the scaled track, query the
signal, decide, then start or drain one replica. Every decision is logged as one JSON line with
its inputs; scale events also go on the drill's timeline.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from sandbox import timeline
from sandbox.autoscaler.metrics import AutoscalerMetrics
from sandbox.autoscaler.options import OptionsError, load_options
from sandbox.autoscaler.policy import Decision, Direction, Observation, Policy
from sandbox.deploy import Deployer, DeployError, ReplicaState, Transition
from sandbox.promapi import PrometheusClient, PrometheusError, Reduce

__all__ = ["Controller", "JsonLog"]

AUTOSCALER = "autoscaler"


class JsonLog:
    """One JSON object a line (to the service's log file through stdout)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def __call__(self, event: str, **fields: Any) -> None:
        record = {"ts": round(time.time(), 3), "service": AUTOSCALER, "event": event, **fields}
        self.out.write(json.dumps(record, default=str) + "\n")
        self.out.flush()


class Controller:
    def __init__(
        self,
        deployer: Deployer,
        options_path: Path,
        prometheus_url: str,
        *,
        metrics: AutoscalerMetrics | None = None,
        log: Callable[..., None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.deployer = deployer
        self.options_path = options_path
        self.prometheus_url = prometheus_url
        self.metrics = metrics or AutoscalerMetrics()
        self.log = log or JsonLog()
        self.clock = clock
        self.options = load_options(options_path)
        self.policy = Policy(self.options)
        self._options_mtime = self._mtime()
        self._prom = PrometheusClient(prometheus_url, timeout_s=5.0)
        self.last_decision: Decision | None = None
        self.last_error: str = ""
        self._publish_options()

    def close(self) -> None:
        self._prom.close()

    # -- options -----------------------------------------------------------------------------
    def _mtime(self) -> float | None:
        try:
            return self.options_path.stat().st_mtime_ns / 1e9
        except FileNotFoundError:
            return None

    def reload_options(self) -> bool:
        mtime = self._mtime()
        if mtime == self._options_mtime:
            return False
        self._options_mtime = mtime
        try:
            options = load_options(self.options_path)
        except OptionsError as exc:
            self.log("options_rejected", error=str(exc), kept=self.options.model_dump())
            return False
        changed = {k: v for k, v in options.model_dump().items() if getattr(self.options, k) != v}
        self.options = options
        self.policy.configure(options)
        self._publish_options()
        if changed:
            self.log("options_changed", changes=changed)
            timeline.record(self.deployer.settings.run_dir, "autoscaler.options", changed)
        return bool(changed)

    def _publish_options(self) -> None:
        m, o = self.metrics, self.options
        m.signal_target.set(o.target)
        m.min_replicas.set(o.min_replicas)
        m.max_replicas.set(o.max_replicas)
        m.readiness_gating.set(1 if o.readiness_gating else 0)
        m.signal_info.clear()
        m.signal_info.labels(o.signal).set(1)

    # -- the loop ----------------------------------------------------------------------------
    def tick(self) -> Decision:
        self.reload_options()
        for move in self.deployer.poll():
            self._on_move(move)
        counts = self.deployer.counts(self.options.track)
        signal = self._signal()
        obs = Observation(self.clock(), signal, counts["ready"], counts["starting"])
        decision = self.policy.decide(obs)
        acted = self._act(decision)
        self.last_decision = decision
        m = self.metrics
        m.decisions.labels(decision.direction.value).inc()
        m.desired.set(decision.desired)
        counts = self.deployer.counts(self.options.track)
        m.ready.set(counts["ready"])
        m.starting.set(counts["starting"])
        m.signal_value.set(float("nan") if signal is None else signal)
        self.log(
            "decision",
            signal_name=self.options.signal,
            query=self.options.promql(),
            signal_error=self.last_error or None,
            action=acted,
            **decision.to_dict(),
        )
        return decision

    def _signal(self) -> float | None:
        try:
            # The signal is one number per replica: a query that returns several series is a
            # policy bug, reported rather than silently reduced.
            value = self._prom.value(self.options.promql(), Reduce.ONLY)
        except PrometheusError as exc:
            self.last_error = str(exc)
            return None
        self.last_error = "" if value is not None else "no series"
        return value

    def _act(self, decision: Decision) -> str | None:
        o = self.options
        run_dir = self.deployer.settings.run_dir
        detail = {**decision.to_dict(), "signal_name": o.signal, "query": o.promql()}
        try:
            if decision.direction is Direction.UP:
                replica = self.deployer.start_replica(
                    o.version,
                    o.track,
                    gated=o.readiness_gating,
                    requested_by=AUTOSCALER,
                    ready_timeout_s=o.ready_timeout_s,
                )
                timeline.record(run_dir, "autoscaler.scale_up", {**detail, "replica": replica.name})
                return f"started {replica.name}"
            if decision.direction is Direction.DOWN:
                victim = self._victim()
                if victim is None:
                    return "nothing to remove (only the stack's engine is left)"
                self.deployer.drain(victim, "autoscaler scale-down")
                timeline.record(run_dir, "autoscaler.scale_down", {**detail, "replica": victim})
                return f"draining {victim}"
        except DeployError as exc:
            self.log("action_failed", error=str(exc))
            return f"failed: {exc}"
        return None

    def _victim(self) -> str | None:
        """A starting replica first (it serves nothing yet), else the newest ready one."""
        replicas = self.deployer.state().active(self.options.track)
        for state in (ReplicaState.STARTING, ReplicaState.READY):
            candidates = [r for r in replicas if r.state is state]
            if candidates:
                return max(candidates, key=lambda r: r.created_at).name
        return None

    def _on_move(self, move: Transition) -> None:
        replica = move.replica
        if replica.track != self.options.track:
            return
        if move.after is ReplicaState.READY and replica.ready_at is not None:
            seconds = replica.ready_at - replica.created_at
            if replica.requested_by == AUTOSCALER:
                self.metrics.scale_up_to_ready.observe(seconds)
            self.log(
                "replica_ready",
                replica=replica.name,
                version=replica.version,
                decision_to_ready_s=round(seconds, 2),
            )
        elif move.after is ReplicaState.FAILED:
            reason = replica.failure or "died"
            self.metrics.replica_failures.labels(reason).inc()
            self.log(
                "replica_failed",
                replica=replica.name,
                version=replica.version,
                reason=reason,
                detail=replica.reason,
            )
        elif move.after is ReplicaState.STOPPED:
            self.log("replica_stopped", replica=replica.name, detail=replica.reason)

    def state(self) -> dict[str, Any]:
        """What /state shows: options, the last decision, the replicas."""
        return {
            "options": self.options.model_dump(mode="json"),
            "query": self.options.promql(),
            "last_decision": self.last_decision.to_dict() if self.last_decision else None,
            "signal_error": self.last_error or None,
            "counts": self.deployer.counts(self.options.track),
            "replicas": [
                r.model_dump(mode="json") for r in self.deployer.state().active(self.options.track)
            ],
        }
