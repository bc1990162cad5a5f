"""Bring the stack up, report on it, take it down: what `make up`, `make status`, `make down` run.

The stack is a list of ``Component``s started through a ``Runtime``. ``up`` is idempotent (a
running component is left alone), waits until each component is *usable* while saying what it
waits for, and stops what it started when it fails, so a failed ``up`` leaves nothing behind.
"""

from __future__ import annotations

import json
import shutil
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from sandbox.components.alertmanager import alertmanager_component
from sandbox.components.base import Component, Readiness, ScrapeTarget
from sandbox.components.engine import STACK_ENGINE
from sandbox.components.prometheus import prometheus_component
from sandbox.console.component import console_component
from sandbox.deploy.engines import stack_engine_component
from sandbox.deploy.state import StateStore
from sandbox.exceptions import SandboxError
from sandbox.gateway.component import gateway_component
from sandbox.retriever.component import retriever_component
from sandbox.runtime.base import Runtime, ServiceState, StartError
from sandbox.settings import Settings
from sandbox.tracesink.component import trace_sink_component
from sandbox.waiting import Progress

__all__ = [
    "ComponentStatus",
    "StackError",
    "default_components",
    "down",
    "preflight",
    "status",
    "up",
    "write_targets",
]


class StackError(SandboxError):
    """The stack could not be brought up; the message says what failed and where to look."""


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    state: ServiceState
    pid: int | None
    url: str
    ready: bool
    why: str


def default_components(compose: bool = False) -> list[Component]:
    """The stack of `make up`, in start order. In compose mode the collector stands in for the
    local trace sink (compose's otel-collector, found under the sink's name)."""
    components = [
        *([] if compose else [trace_sink_component()]),
        stack_engine_component(),
        retriever_component(),
        gateway_component(),
        alertmanager_component(),
        prometheus_component(),
        console_component(),
    ]
    return sorted(components, key=lambda c: c.order)


def write_targets(settings: Settings, targets: Sequence[ScrapeTarget]) -> None:
    """Rewrite Prometheus' discovery files, one per job, atomically (Prometheus may read any time)."""
    settings.targets_dir.mkdir(parents=True, exist_ok=True)
    by_job: dict[str, list[dict[str, object]]] = {}
    for target in targets:
        by_job.setdefault(target.job, []).append(
            {"targets": [target.address], "labels": target.labels}
        )
    for stale in settings.targets_dir.glob("*.json"):
        if stale.stem not in by_job:
            stale.unlink()
    for job, groups in by_job.items():
        path = settings.targets_dir / f"{job}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups, indent=2) + "\n")
        tmp.replace(path)


def preflight(settings: Settings, components: Sequence[Component], runtime: Runtime) -> list[str]:
    """Problems that would make `up` fail, each with what to do about it."""
    problems: list[str] = []
    names = {c.name for c in components}
    if _compose(runtime):
        # Compose runs the images: no local engine or Prometheus is needed, and its containers
        # hold the ports. A missing container is the runtime's StartError, which says what to run.
        return problems
    if any(n.startswith("engine") for n in names):
        if not Path(settings.engine_python).exists():
            problems.append(
                f"the engine's Python {settings.engine_python} is missing: run `make setup`"
            )
        if not (settings.model_dir / "config.json").exists():
            problems.append(
                f"no model at {settings.model_dir}: run `make setup` (or set SANDBOX_MODEL_DIR)"
            )
    for binary, name, package in (
        (settings.prometheus_bin, "prometheus", "prometheus"),
        (settings.alertmanager_bin, "alertmanager", "prometheus-alertmanager"),
    ):
        if name in names and shutil.which(binary) is None:
            problems.append(f"`{binary}` not found: run `make setup` (Debian package {package})")
    for component in components:
        if runtime.status(component.name).state is ServiceState.RUNNING:
            continue
        port = component.spec(settings).port
        if _port_in_use(settings.host, port):
            problems.append(
                f"{component.name}: port {port} on {settings.host} is taken by another program; "
                f"stop it or choose another port (SANDBOX_{component.name.upper()}_PORT)"
            )
    return problems


def _compose(runtime: Runtime) -> bool:
    from sandbox.runtime.docker import DockerRuntime

    return isinstance(runtime, DockerRuntime)


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def up(
    settings: Settings,
    runtime: Runtime,
    components: Sequence[Component] | None = None,
    progress: Progress = print,
    engine_overrides: Mapping[str, Any] | None = None,
) -> list[ComponentStatus]:
    """Start every component that is not running and wait until all are ready (in compose mode:
    start the project's stopped containers, and wait for them).

    ``engine_overrides`` are settings the engine starts with if it is not running yet: a drill
    whose setup changes the engine starts it changed, instead of restarting it at once."""
    components = list(components or default_components(_compose(runtime)))
    problems = preflight(settings, components, runtime)
    if problems:
        raise StackError("cannot start the stack:\n  - " + "\n  - ".join(problems))
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    write_targets(settings, [t for c in components for t in c.scrape(settings)])
    started: list[str] = []
    try:
        for component in components:
            before = runtime.status(component.name).state
            own = settings
            if engine_overrides and component.name == STACK_ENGINE:
                own = settings.model_copy(update=dict(engine_overrides))
            state = runtime.start(component.spec(own))
            if before is not ServiceState.RUNNING:
                started.append(component.name)
                progress(f"started {component.name} (pid {state.pid}), log {state.log_path or '-'}")
            else:
                progress(f"{component.name} already running (pid {state.pid})")
        _wait_ready(settings, runtime, components, progress)
    except BaseException as exc:
        # Leave nothing half-up: stop what this call started; logs stay for the post-mortem.
        if started:
            progress(f"stopping what was started: {', '.join(started)}")
        for name in reversed(started):
            runtime.stop(name, settings.stop_timeout_s)
        if isinstance(exc, StartError):
            raise StackError(str(exc)) from exc
        raise
    return status(settings, runtime, components)


def _wait_ready(
    settings: Settings, runtime: Runtime, components: Sequence[Component], progress: Progress
) -> None:
    start = time.monotonic()
    deadline = start + settings.ready_timeout_s
    last_report = 0.0
    pending = list(components)
    with httpx.Client(timeout=httpx.Timeout(10.0, connect=1.0)) as client:
        while pending:
            still: list[Component] = []
            reason = ""
            for component in pending:
                service = runtime.status(component.name)
                if service.state is not ServiceState.RUNNING:
                    tail = runtime.log_tail(component.name, 15)
                    raise StackError(
                        f"{component.name} stopped while starting ({service.detail}). Last log lines:\n{tail}"
                    )
                readiness = component.check(settings, client)
                if readiness.ready:
                    progress(
                        f"{component.name} ready after {time.monotonic() - start:.0f} s at {component.url(settings)}"
                    )
                else:
                    still.append(component)
                    reason = readiness.why
            pending = still
            if not pending:
                return
            now = time.monotonic()
            if now >= deadline:
                names = ", ".join(c.name for c in pending)
                raise StackError(
                    f"not ready after {settings.ready_timeout_s:.0f} s: {names} ({reason}); "
                    f"logs in {settings.log_dir} (raise SANDBOX_READY_TIMEOUT_S on a slow machine)"
                )
            if now - last_report >= 5.0:
                last_report = now
                progress(
                    f"waiting for {', '.join(c.name for c in pending)} ({now - start:.0f} s): {reason}"
                )
            time.sleep(0.5)


def status(
    settings: Settings, runtime: Runtime, components: Sequence[Component] | None = None
) -> list[ComponentStatus]:
    components = list(components or default_components(_compose(runtime)))
    rows = []
    with httpx.Client(timeout=httpx.Timeout(5.0, connect=1.0)) as client:
        for component in components:
            service = runtime.status(component.name)
            if service.state is ServiceState.RUNNING:
                readiness = component.check(settings, client)
            elif service.state is ServiceState.EXITED:
                readiness = Readiness.no(service.detail)
            else:
                readiness = Readiness.no("not started (run `make up`)")
            rows.append(
                ComponentStatus(
                    component.name,
                    service.state,
                    service.pid,
                    component.url(settings),
                    readiness.ready,
                    readiness.why,
                )
            )
    return rows


def down(settings: Settings, runtime: Runtime, progress: Progress = print) -> list[str]:
    """Stop every service the runtime has a record of, including ones a crashed `up` left."""
    stopped = []
    for name in reversed(runtime.names()):
        service = runtime.status(name)
        runtime.stop(name, settings.stop_timeout_s)
        stopped.append(name)
        progress(f"stopped {name}" + (f" (pid {service.pid})" if service.pid else ""))
    if settings.targets_dir.is_dir():
        write_targets(settings, [])
    StateStore(settings.run_dir).clear()  # deployed replicas were among the services stopped
    return stopped
