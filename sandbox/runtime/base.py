"""What every runtime (local processes, Docker containers) agrees on.

A component of the stack is described once, as a ``ServiceSpec``; a runtime turns it into a
running process or container and reports on it. Nothing outside ``sandbox.runtime`` starts or
signals processes or talks to Docker.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable

from sandbox.exceptions import SandboxError

__all__ = [
    "Runtime",
    "RuntimeFailure",
    "ServiceSpec",
    "ServiceState",
    "ServiceStatus",
    "StartError",
]


class RuntimeFailure(SandboxError):
    """Base of the runtime's errors: a process or container cannot be run."""


class StartError(RuntimeFailure):
    """A service could not be started; the message says why and where its log is."""


@dataclass(frozen=True)
class ServiceSpec:
    """One component of the stack, as either runtime needs it.

    ``argv``/``env`` describe the local process; ``image``/``command`` the container.
    ``port`` is where the component listens (on the settings' host locally, inside the
    container in compose).
    """

    name: str
    argv: tuple[str, ...]
    port: int
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    # Compose / Docker.
    image: str | None = None
    command: tuple[str, ...] = ()
    container_port: int | None = None
    volumes: dict[str, str] = field(default_factory=dict)  # host path -> container path
    gpu: bool = False  # one GPU (the settings' device), shared with the other engines
    shm_size: str | None = None  # /dev/shm of the container ("1g"); Docker's default is 64 MB
    labels: dict[str, str] = field(default_factory=dict)
    # CPU cores the service (and every process it forks) may run on; empty: any core. An engine
    # replica confined to its own cores stands for a replica with its own GPU.
    cpus: tuple[int, ...] = ()
    # Scheduling priority (a nice value, -20..19; 0 leaves it alone). The load generator and the
    # retriever ask for -5: light, latency-bound work that a CPU engine keeping every core busy
    # would otherwise delay (in production they have hosts of their own). Raising priority needs
    # root; without it the service runs at the default priority.
    nice: int = 0
    # A nice value for the processes the command starts, not for the command itself: vLLM's
    # engine core (and, in vLLM's default CPU layout, its worker) runs at 10 while its API server
    # keeps the default, so that the server (and the gateway and load generator beside it) get a
    # core when a request arrives.
    child_nice: int = 0
    # Run the command in the lowest real-time class (SCHED_RR, priority 1), above every normal
    # task, for a mostly idle process whose timing is the measurement (the load generator, the
    # gateway, the stack engine's API server). On two cores with a CPU vLLM engine polling, every
    # normal-class task, whatever its nice value, was seen waking up to 1.8 s late while
    # real-time ones woke within 0.3 ms (bench/wakeup_delay.py). With child_nice, only the command
    # is real-time: what it starts (vLLM's polling engine core) begins in the normal class. Needs
    # root; without it the service keeps its nice value.
    realtime: bool = False
    # OpenMP compute threads of a local process (OMP_NUM_THREADS); 0 leaves the library's default,
    # a thread per core. OpenMP threads spin while they wait for work, so two CPU engines that
    # each run one per core starve each other (see engine_threads in sandbox.components.engine).
    # A container is left to size its threads from the cores it is given.
    compute_threads: int = 0

    def fingerprint(self) -> str:
        """A short digest of everything that decides how the service runs: two specs with the same
        fingerprint start the same process, so a restart from one to the other changes nothing."""
        text = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class ServiceState(StrEnum):
    RUNNING = "running"
    EXITED = "exited"  # it was started and has stopped on its own: a crash, usually
    STOPPED = "stopped"  # never started, or stopped by us


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    state: ServiceState
    pid: int | None = None
    exit_code: int | None = None
    detail: str = ""
    log_path: Path | None = None
    # The running spec's fingerprint, where the runtime keeps it (the local one does); None:
    # unknown, so a caller that wants the service to run some spec must (re)start it.
    fingerprint: str | None = None


@runtime_checkable
class Runtime(Protocol):
    """Starts, stops and reports on services. Implementations: LocalRuntime, DockerRuntime."""

    def start(self, spec: ServiceSpec) -> ServiceStatus: ...

    def stop(self, name: str, timeout_s: float = 15.0) -> ServiceStatus: ...

    def status(self, name: str) -> ServiceStatus: ...

    def names(self) -> list[str]:
        """Every service this runtime has a record of (running or not)."""
        ...

    def log_tail(self, name: str, lines: int = 20) -> str: ...
