"""Deployments: start replicas of a version through the runtime, admit them when ready, drain and
stop them, and shift the gateway's weights (canary, shadow, rollback).

Nothing here blocks except the ``wait_*`` helpers: ``start_replica`` launches and returns, and
``poll`` advances every replica one step (readiness, deadlines, deaths, drains). The autoscaler
calls ``poll`` from its loop; the CLI calls ``wait_for`` which polls until a condition holds.

A replica is added to Prometheus' discovery file and to the gateway only once it is ready
(readiness gating); ``start_replica(..., gated=False)`` admits it at once, which is the fault
of sending traffic to an engine that is still loading.

The stack's own engine (service ``engine``, ``stack_engine_component``) is the first replica of
version ``stable``: built as every replica is, but started by ``make up``. The deployer never
stops it, counts it as ready while it runs, and keeps it in the engine discovery file.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from sandbox import timeline
from sandbox.components.base import ScrapeTarget, free_port
from sandbox.components.engine import STACK_ENGINE
from sandbox.deploy.engines import Launcher, VllmLauncher, scrape_target, stack_engine_component
from sandbox.deploy.routing import GatewayRouting, RoutingError
from sandbox.deploy.state import DeploymentState, FailureKind, Replica, ReplicaState, StateStore
from sandbox.deploy.targets import write_job_targets
from sandbox.deploy.versions import (
    DEFAULT_VERSIONS_FILE,
    STABLE,
    EngineVersion,
    VersionError,
    load_versions,
)
from sandbox.exceptions import SandboxError
from sandbox.runtime.base import Runtime, ServiceState, StartError
from sandbox.settings import Settings
from sandbox.waiting import NotYet, Progress, wait_until

__all__ = ["BASE_ENGINE", "DeployError", "Deployer", "Transition"]

BASE_ENGINE = STACK_ENGINE  # the stack's own stable engine (stack_engine_component)
CANARY = "canary"


class DeployError(SandboxError):
    """A deploy, rollback or replica start failed; the message says why and where the log is."""


@dataclass(frozen=True)
class Transition:
    """One replica's move during a ``poll`` (what the autoscaler logs and measures)."""

    replica: Replica
    before: ReplicaState
    after: ReplicaState


class Deployer:
    def __init__(
        self,
        settings: Settings,
        runtime: Runtime,
        gateway: GatewayRouting | None,
        *,
        versions: dict[str, EngineVersion] | None = None,
        launcher: Launcher | None = None,
        drain_timeout_s: float = 30.0,
        base_engine: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.gateway = gateway
        self.versions = versions if versions is not None else load_versions(DEFAULT_VERSIONS_FILE)
        self.launcher = launcher or VllmLauncher(settings)
        self.drain_timeout_s = drain_timeout_s
        self.base_engine = base_engine
        self.clock = clock
        self.store = StateStore(settings.run_dir)
        self._http = httpx.Client(timeout=httpx.Timeout(10.0, connect=1.0))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Deployer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ------------------------------------------------------------------------------
    def version(self, name: str) -> EngineVersion:
        try:
            return self.versions[name]
        except KeyError:
            raise VersionError(
                f"unknown version {name!r}; known: {', '.join(sorted(self.versions))}"
            ) from None

    def state(self) -> DeploymentState:
        return self.store.load()

    def base_running(self) -> bool:
        return self.base_engine and self.runtime.status(BASE_ENGINE).state is ServiceState.RUNNING

    def counts(self, track: str = STABLE) -> dict[str, int]:
        """Replicas of a track by state; the stack's engine counts as a ready stable replica."""
        state = self.state()
        counts = {s.value: 0 for s in ReplicaState}
        for replica in state.replicas:
            if replica.track == track:
                counts[replica.state.value] += 1
        if track == STABLE and self.base_running():
            counts[ReplicaState.READY.value] += 1
        return counts

    # -- replicas -------------------------------------------------------------------------------
    def start_replica(
        self,
        version_name: str,
        track: str = STABLE,
        *,
        gated: bool = True,
        requested_by: str = "operator",
        ready_timeout_s: float | None = None,
    ) -> Replica:
        """Launch one replica and return at once (state ``starting``, or ``failed`` when the
        runtime cannot start it). ``gated=False`` admits it to the gateway before it is ready.
        Not ready within ``ready_timeout_s`` (default: the version's), ``poll`` fails and stops it."""
        version = self.version(version_name)
        now = self.clock()
        with self.store.transaction() as state:
            name = state.new_name(track)
            port = free_port(self.settings.host)
            replica = Replica(
                name=name,
                version=version.name,
                track=track,
                port=port,
                url=self.launcher.url(name, port),
                created_at=now,
                changed_at=now,
                deadline=now + (ready_timeout_s or version.ready_timeout_s),
                requested_by=requested_by,
                reason="" if gated else "readiness gating off",
                gated=gated,
            )
            state.replicas.append(replica)
        self._event("replica.starting", replica, gated=gated)
        try:
            self.runtime.start(self.launcher.spec(version, replica))
        except StartError as exc:
            return self._fail(replica.name, "exited", f"could not start: {exc}")
        if not gated:
            self._admit(replica.name)
        return self.state().get(replica.name)

    def drain(self, name: str, reason: str) -> Replica:
        """Take a replica out of rotation; ``poll`` stops it once idle or at the drain deadline."""
        if name == BASE_ENGINE:
            raise DeployError(
                "the stack's own engine is not managed by deployments; `make down` stops it"
            )
        with self.store.transaction() as state:
            replica = state.get(name)
            if replica.state is ReplicaState.DRAINING:
                return replica
            replica.move(ReplicaState.DRAINING, reason, self.clock())
            replica.deadline = self.clock() + self.drain_timeout_s
        self._withdraw(replica)
        self._event("replica.draining", replica)
        return self.state().get(name)

    def poll(self) -> list[Transition]:
        """Advance every active replica one step; return the moves made."""
        moves: list[Transition] = []
        for replica in self.state().active():
            before = replica.state
            after = self._step(replica)
            if after is not None and after.state is not before:
                moves.append(Transition(after, before, after.state))
        self._sync_targets()
        return moves

    def _step(self, replica: Replica) -> Replica | None:
        now = self.clock()
        service = self.runtime.status(replica.name)
        if replica.state is ReplicaState.STARTING:
            if service.state is not ServiceState.RUNNING:
                tail = self.runtime.log_tail(replica.name, 8).strip()
                return self._fail(
                    replica.name,
                    "exited",
                    f"exited while starting ({service.detail}); last log lines: {tail[-800:]}",
                )
            readiness = self.launcher.check(self.version(replica.version), replica, self._http)
            if readiness.ready:
                return self._ready(replica.name)
            if replica.deadline is not None and now >= replica.deadline:
                return self._fail(
                    replica.name,
                    "deadline",
                    f"not ready {now - replica.created_at:.0f} s after start ({readiness.why})",
                )
            return None
        if replica.state is ReplicaState.READY:
            if service.state is not ServiceState.RUNNING:
                return self._fail(replica.name, "died", f"died while ready ({service.detail})")
            if not replica.registered:
                self._admit(replica.name)  # a gateway that was down is retried
            return None
        if replica.state is ReplicaState.DRAINING:
            # One that never became ready has nothing in flight: stop it at once.
            running = service.state is ServiceState.RUNNING and replica.ready_at is not None
            in_flight = self.launcher.in_flight(replica, self._http) if running else 0.0
            if in_flight == 0 or (replica.deadline is not None and now >= replica.deadline):
                return self._stop(
                    replica.name,
                    "drained" if in_flight == 0 else f"drain deadline ({in_flight:g} in flight)",
                )
        return None

    def _ready(self, name: str) -> Replica:
        # Register first, then record ready and registered in one write: whoever sees the
        # replica ready (the autoscaler's counts, a test) also sees it in the gateway's rotation.
        registered = self._register(self.state().get(name))
        with self.store.transaction() as state:
            replica = state.get(name)
            replica.move(ReplicaState.READY, "", self.clock())
            replica.deadline = None
            replica.registered = replica.registered or registered
        self._sync_targets()
        self._event(
            "replica.ready",
            replica,
            start_to_ready_s=round((replica.ready_at or 0) - replica.created_at, 2),
        )
        return self.state().get(name)

    def _fail(self, name: str, kind: FailureKind, reason: str) -> Replica:
        with self.store.transaction() as state:
            replica = state.get(name)
            replica.move(ReplicaState.FAILED, reason, self.clock())
            replica.failure = kind
        self._withdraw(replica)
        self.runtime.stop(name, self.settings.stop_timeout_s)
        self._event("replica.failed", replica)
        self._sync_targets()
        return self.state().get(name)

    def _stop(self, name: str, reason: str) -> Replica:
        self.runtime.stop(name, self.settings.stop_timeout_s)
        with self.store.transaction() as state:
            replica = state.get(name)
            replica.move(ReplicaState.STOPPED, reason, self.clock())
        self._event("replica.stopped", replica)
        return replica

    def _admit(self, name: str) -> None:
        """Register with the gateway (and the discovery file); a gateway error is retried by poll."""
        self._sync_targets()
        if self._register(self.state().get(name)):
            with self.store.transaction() as state:
                state.get(name).registered = True

    def _register(self, replica: Replica) -> bool:
        """Whether the gateway knows the replica now (False without a gateway, or on an error)."""
        if self.gateway is None:
            return False
        if replica.registered:
            return True
        try:
            self.gateway.register(replica.name, replica.track, replica.url)
        except RoutingError as exc:
            self._event("replica.unregistered", replica, error=str(exc))
            return False
        return True

    def _withdraw(self, replica: Replica) -> None:
        if self.gateway is not None and replica.registered:
            try:
                self.gateway.unregister(replica.name)
            except RoutingError as exc:
                self._event("gateway.error", replica, error=str(exc))
        with self.store.transaction() as state:
            state.get(replica.name).registered = False
        self._sync_targets()

    def _sync_targets(self) -> None:
        """The engine discovery file: the stack's engine plus every admitted replica."""
        targets: list[ScrapeTarget] = []
        if self.base_engine:
            targets += stack_engine_component().scrape(self.settings)
        for replica in self.state().active():
            admitted = replica.state is ReplicaState.READY or (
                replica.state is ReplicaState.STARTING and not replica.gated
            )
            if admitted:
                targets.append(
                    scrape_target(replica, self.launcher.address(replica.name, replica.port))
                )
        write_job_targets(self.settings, "engine", targets)

    # -- waiting -------------------------------------------------------------------------------
    def wait_for(
        self,
        done: Callable[[DeploymentState], bool],
        what: str,
        timeout_s: float,
        progress: Progress | None = None,
        interval_s: float = 1.0,
    ) -> DeploymentState:
        """Poll until ``done(state)``; raise DeployError naming ``what`` after ``timeout_s``."""

        def check() -> DeploymentState | NotYet:
            self.poll()
            state = self.state()
            return state if done(state) else NotYet()

        return wait_until(
            check,
            what,
            timeout_s,
            interval_s=interval_s,
            progress=progress,
            report_every_s=10.0,
            fail=DeployError,
        )

    def wait_settled(
        self, name: str, timeout_s: float, progress: Progress | None = None
    ) -> Replica:
        """Wait until the replica is ready, or has failed, or has stopped."""
        self.wait_for(
            lambda s: (
                s.get(name).state is not ReplicaState.STARTING
                and s.get(name).state is not ReplicaState.DRAINING
            ),
            f"{name} to become ready",
            timeout_s,
            progress,
        )
        return self.state().get(name)

    # -- operator actions ---------------------------------------------------------------------
    def remove_all(
        self, progress: Progress | None = None, requested_by: str | None = None
    ) -> list[str]:
        """Stop every managed replica, or only those ``requested_by`` one requester (a reset:
        nothing of the deployments stays running); return the names stopped."""
        mine = [
            r
            for r in self.state().active()
            if requested_by is None or r.requested_by == requested_by
        ]
        for replica in mine:
            if replica.state is not ReplicaState.DRAINING:
                self.drain(replica.name, "reset")
        names = {r.name for r in mine}
        self.wait_stopped(names, "every replica to stop", progress)
        return sorted(names)

    def wait_stopped(self, names: set[str], what: str, progress: Progress | None = None) -> None:
        """Wait until none of ``names`` is active (drained replicas stop by their deadline)."""
        self.wait_for(
            lambda s: not any(r.active for r in s.replicas if r.name in names),
            what,
            self.drain_timeout_s + self.settings.stop_timeout_s + 30,
            progress,
        )

    # -- records -------------------------------------------------------------------------------
    def _event(self, kind: str, replica: Replica, **extra: Any) -> None:
        detail = {
            "replica": replica.name,
            "version": replica.version,
            "track": replica.track,
            "port": replica.port,
            "state": replica.state.value,
            "reason": replica.reason,
            "requested_by": replica.requested_by,
            **extra,
        }
        timeline.record(self.settings.run_dir, kind, detail)
