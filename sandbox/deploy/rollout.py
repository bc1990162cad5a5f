"""Rollouts: a version as the canary with a share of traffic (or a mirror), and rollback.

The deployer (``sandbox.deploy.deployer``) runs replicas; a rollout decides which version runs
on the canary track and moves the gateway's weights. Both write the drill's timeline.
"""

from __future__ import annotations

from typing import Any

from sandbox import timeline
from sandbox.deploy.deployer import CANARY, Deployer, DeployError
from sandbox.deploy.routing import RoutingError
from sandbox.deploy.state import Replica, ReplicaState
from sandbox.deploy.versions import STABLE
from sandbox.waiting import Progress

__all__ = ["Rollout"]


class Rollout:
    """Canary and rollback over a deployer's replicas."""

    def __init__(self, deployer: Deployer) -> None:
        self.deployer = deployer

    def deploy(
        self,
        version_name: str,
        weight: float,
        *,
        shadow: bool = False,
        progress: Progress | None = None,
        timeout_s: float | None = None,
    ) -> Replica:
        """Run ``version_name`` as the canary and give it ``weight`` percent of traffic (or, with
        ``shadow``, a mirror of ``weight`` percent). A canary of another version is rolled back
        first; one of the same version is reused, so `deploy` again just moves the weight."""
        if not 0 <= weight <= 100:
            raise DeployError(f"--weight {weight:g}: a percentage between 0 and 100")
        version = self.deployer.version(version_name)
        started = self.deployer.clock()
        current = [
            r for r in self.deployer.state().active(CANARY) if r.state is not ReplicaState.DRAINING
        ]
        if any(r.version != version.name for r in current):
            self.rollback(progress=progress, reason=f"replaced by {version.name}")
            current = []
        replica = next((r for r in current if r.state is ReplicaState.READY), None)
        if replica is None:
            replica = current[0] if current else self.deployer.start_replica(version.name, CANARY)
            if progress:
                progress(f"starting {replica.name} ({version.name}) on port {replica.port}")
            replica = self.deployer.wait_settled(
                replica.name, timeout_s or version.ready_timeout_s + 30, progress
            )
        if replica.state is not ReplicaState.READY:
            self._record_deploy(
                "deploy.failed",
                version.name,
                weight,
                shadow,
                started,
                replica=replica.name,
                reason=replica.reason,
            )
            raise DeployError(f"{version.name} did not become ready: {replica.reason}")
        self._route_canary(weight, shadow)
        self._record_deploy(
            "deploy",
            version.name,
            weight,
            shadow,
            started,
            replica=replica.name,
            start_to_ready_s=round((replica.ready_at or started) - replica.created_at, 2),
        )
        return replica

    def _route_canary(self, weight: float, shadow: bool) -> None:
        if shadow:
            weights, mirror = {STABLE: 100.0}, {CANARY: weight / 100}
        else:
            weights, mirror = {STABLE: 100.0 - weight, CANARY: float(weight)}, None
        if self.deployer.gateway is not None:
            try:
                self.deployer.gateway.set_weights(weights)
                self.deployer.gateway.set_shadow(
                    CANARY if mirror else None, weight / 100 if mirror else 0.0
                )
            except RoutingError as exc:
                raise DeployError(f"the gateway did not take the weights: {exc}") from exc
        with self.deployer.store.transaction() as state:
            state.weights, state.shadow = weights, mirror

    def rollback(self, progress: Progress | None = None, reason: str = "rollback") -> list[Replica]:
        """All traffic to stable, no shadow, every canary replica drained and stopped."""
        started = self.deployer.clock()
        if self.deployer.gateway is not None:
            try:
                self.deployer.gateway.set_shadow(None)
                if self._gateway_knows(STABLE):
                    self.deployer.gateway.set_weights({STABLE: 100.0})
            except RoutingError as exc:
                raise DeployError(f"rollback: the gateway did not take the weights: {exc}") from exc
        with self.deployer.store.transaction() as state:
            state.weights, state.shadow = {STABLE: 100.0}, None
        canaries = self.deployer.state().active(CANARY)
        versions = sorted({r.version for r in canaries})
        for replica in canaries:
            self.deployer.drain(replica.name, reason)
        names = {r.name for r in canaries}
        self.deployer.wait_stopped(names, "the canary to drain and stop", progress)
        timeline.record(
            self.deployer.settings.run_dir,
            "rollback",
            {
                "versions": versions,
                "replicas": sorted(names),
                "reason": reason,
                "seconds": round(self.deployer.clock() - started, 2),
            },
        )
        return [self.deployer.state().get(n) for n in sorted(names)]

    def _gateway_knows(self, version: str) -> bool:
        if self.deployer.gateway is None:
            return False
        return any(e.get("version") == version for e in self.deployer.gateway.engines().values())

    # -- records --
    def _record_deploy(
        self, kind: str, version: str, weight: float, shadow: bool, started: float, **extra: Any
    ) -> None:
        timeline.record(
            self.deployer.settings.run_dir,
            kind,
            {
                "version": version,
                "weight": weight,
                "shadow": shadow,
                "seconds": round(self.deployer.clock() - started, 2),
                **extra,
            },
        )
