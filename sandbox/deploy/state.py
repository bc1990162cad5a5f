"""Deployment state, persisted in ``<run_dir>/deploy/state.json``.

A replica is one engine process (or container) of one version on one *track*: ``stable`` (the
stack's engine plus the autoscaler's replicas) or ``canary`` (what ``sandbox deploy`` rolls
out). The gateway routes by track, so its weights read ``{"stable": 90, "canary": 10}``
whatever configuration the canary runs; Prometheus labels carry both (``version`` = track,
``config`` = the version's name).

A replica moves through explicit states::

    starting -> ready -> draining -> stopped
        \\-> failed (exited, or not ready by its deadline)     ready -> failed (it died)

Any other move raises ``TransitionError``. The CLI and the autoscaler may change the file at
the same time, so every read-modify-write happens under an exclusive ``flock``.
"""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sandbox.exceptions import ConfigError

__all__ = [
    "ACTIVE_STATES",
    "DeploymentState",
    "FailureKind",
    "Replica",
    "ReplicaState",
    "StateStore",
    "TransitionError",
]

# Finished replicas kept for `sandbox deployments` and the report; older ones are dropped.
HISTORY_KEPT = 40


class TransitionError(ConfigError):
    """A replica was asked to make a move its state machine does not allow."""


# Why a replica failed, as a bounded value (a metric label, a test's assertion); ``reason``
# keeps the human-readable detail.
FailureKind = Literal["exited", "deadline", "died"]


class ReplicaState(StrEnum):
    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"
    STOPPED = "stopped"
    FAILED = "failed"


ALLOWED: dict[ReplicaState, frozenset[ReplicaState]] = {
    ReplicaState.STARTING: frozenset(
        {ReplicaState.READY, ReplicaState.FAILED, ReplicaState.DRAINING}
    ),
    ReplicaState.READY: frozenset({ReplicaState.DRAINING, ReplicaState.FAILED}),
    ReplicaState.DRAINING: frozenset({ReplicaState.STOPPED, ReplicaState.FAILED}),
    ReplicaState.STOPPED: frozenset(),
    ReplicaState.FAILED: frozenset(),
}
ACTIVE_STATES = frozenset({ReplicaState.STARTING, ReplicaState.READY, ReplicaState.DRAINING})


class Replica(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str  # also the runtime's service name and the gateway's engine name
    version: str  # the EngineVersion it runs
    track: str  # the gateway's routing version: stable | canary
    port: int
    url: str  # as the gateway and Prometheus reach it
    state: ReplicaState = ReplicaState.STARTING
    reason: str = ""  # why it is in this state, for people (a failure's cause, who drained it)
    failure: FailureKind | None = None  # set when it failed: exited, deadline or died
    gated: bool = True  # admitted (routed, scraped) only once ready; False: from the start
    created_at: float = Field(default_factory=time.time)
    changed_at: float = Field(default_factory=time.time)
    ready_at: float | None = None
    deadline: float | None = None  # starting: not ready by then -> failed; draining: stop by then
    registered: bool = False  # with the gateway
    requested_by: str = "operator"  # operator | autoscaler

    def move(self, to: ReplicaState, reason: str = "", now: float | None = None) -> None:
        if to not in ALLOWED[self.state]:
            raise TransitionError(
                f"replica {self.name}: {self.state.value} -> {to.value} is not allowed"
            )
        self.state = to
        self.reason = reason
        self.changed_at = time.time() if now is None else now
        if to is ReplicaState.READY:
            self.ready_at = self.changed_at

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


class DeploymentState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    replicas: list[Replica] = Field(default_factory=list)
    weights: dict[str, float] = Field(default_factory=lambda: {"stable": 100.0})
    shadow: dict[str, float] | None = None  # {"canary": 0.5}: mirror half the requests
    next_index: int = 1

    def get(self, name: str) -> Replica:
        for replica in self.replicas:
            if replica.name == name:
                return replica
        raise KeyError(name)

    def active(self, track: str | None = None, state: ReplicaState | None = None) -> list[Replica]:
        return [
            r
            for r in self.replicas
            if r.active
            and (track is None or r.track == track)
            and (state is None or r.state is state)
        ]

    def new_name(self, track: str) -> str:
        name = f"engine-{track}-{self.next_index}"
        self.next_index += 1
        return name

    def prune(self) -> None:
        finished = [r for r in self.replicas if not r.active]
        drop = {id(r) for r in finished[:-HISTORY_KEPT]} if len(finished) > HISTORY_KEPT else set()
        self.replicas = [r for r in self.replicas if id(r) not in drop]


class StateStore:
    """Loads and saves the deployment state under a lock; see the module docstring."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir / "deploy"
        self.path = self.dir / "state.json"
        self.lock_path = self.dir / "state.lock"

    def load(self) -> DeploymentState:
        try:
            return DeploymentState.model_validate_json(self.path.read_text())
        except FileNotFoundError:
            return DeploymentState()

    def clear(self) -> None:
        """Forget every replica: `down` has stopped them all, and none must look "died while ready"."""
        self.path.unlink(missing_ok=True)

    def _save(self, state: DeploymentState) -> None:
        state.prune()
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state.model_dump(mode="json"), indent=1) + "\n")
        tmp.replace(self.path)

    @contextmanager
    def transaction(self) -> Iterator[DeploymentState]:
        """Yield the current state; it is saved when the block ends without an error."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = self.load()
                yield state
                self._save(state)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
