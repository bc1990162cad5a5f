"""Docker runtime: each service is a container of the compose project, through the Docker SDK.

``docker compose up`` starts the fixed stack from ``compose.yaml``: containers named
``<project>-<service>-1`` with compose's own labels (``com.docker.compose.project`` and
``...service``). This runtime finds those by their labels under the sandbox's names (``engine``
is compose's ``engine-gpu`` or ``engine-cpu``, ``tracesink`` its ``otel-collector``), starts
them again when they are stopped, and refuses to invent them: compose owns their definition.

What changes while a drill runs (extra engine replicas, a canary, the load generator) it runs
itself, as containers on the project's network, labelled ``sandbox.component=<name>`` and with
the compose project's labels, so ``names()`` finds them after a crash and
``docker compose down --remove-orphans`` removes them with the project.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sandbox.runtime.base import (
    RuntimeFailure,
    ServiceSpec,
    ServiceState,
    ServiceStatus,
    StartError,
)

__all__ = [
    "COMPOSE_SERVICES",
    "LABEL",
    "PROJECT_LABEL",
    "SERVICE_LABEL",
    "DockerRuntime",
    "docker_available",
    "image_mismatch",
    "is_compose_service",
    "pick_container",
    "same_flags",
    "sandbox_name_of",
]

LABEL = "sandbox.component"
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
# The sandbox's component names for the services compose.yaml defines. The engine has one
# service per profile (only one of them runs); the collector takes the local trace sink's place.
COMPOSE_SERVICES: dict[str, tuple[str, ...]] = {
    "engine": ("engine-gpu", "engine-cpu"),
    "tracesink": ("otel-collector",),
    "retriever": ("retriever",),
    "gateway": ("gateway",),
    "prometheus": ("prometheus",),
    "alertmanager": ("alertmanager",),
}
_SANDBOX_NAME = {
    service: name for name, services in COMPOSE_SERVICES.items() for service in services
}


def docker_available(timeout_s: float = 2.0) -> bool:
    """True when a Docker engine answers a ping; False when there is none (no client error leaks)."""
    try:
        import docker

        client = docker.from_env(timeout=int(max(1, timeout_s)))
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@contextmanager
def _engine_errors() -> Iterator[None]:
    """Translate "no engine" failures into one error that says what to do."""
    import docker.errors
    import requests

    try:
        yield
    except docker.errors.NotFound:
        raise
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise RuntimeFailure(
            f"the Docker engine did not answer ({exc}); start it, or run without Docker: SANDBOX_MODE=local"
        ) from exc


def sandbox_name_of(container: Any) -> str | None:
    """The sandbox's name for a container of the project; None for one it does not manage
    (qdrant, tempo, grafana)."""
    labels = container.labels or {}
    if LABEL in labels:
        return str(labels[LABEL])
    return _SANDBOX_NAME.get(str(labels.get(SERVICE_LABEL, "")))


def is_compose_service(container: Any) -> bool:
    """Compose created it (from compose.yaml), as opposed to the sandbox."""
    return LABEL not in (container.labels or {})


def pick_container(containers: Iterable[Any], name: str) -> Any | None:
    """The container that plays ``name`` among the project's: one the sandbox added, else
    compose's own, a running one first (only one engine profile runs at a time)."""
    candidates = [c for c in containers if sandbox_name_of(c) == name]
    candidates.sort(key=lambda c: (is_compose_service(c), c.status != "running"))
    return candidates[0] if candidates else None


# Compose services whose flags the sandbox changes (faults/engine.py): when the sandbox's
# command differs from compose's, its own container stands in for compose's.
RECONFIGURABLE = ("engine",)


def _flags(argv: Iterable[str]) -> dict[str, str]:
    flags: dict[str, str] = {}
    items = list(argv)
    for i, item in enumerate(items):
        if not item.startswith("--"):
            continue
        flag, eq, value = item.partition("=")
        if not eq and i + 1 < len(items) and not items[i + 1].startswith("--"):
            value = items[i + 1]
        flags[flag] = value
    return flags


def same_flags(first: Iterable[str], second: Iterable[str]) -> bool:
    """Two command lines with the same flags, ``--flag value`` and ``--flag=value`` alike."""
    return _flags(first) == _flags(second)


def image_mismatch(spec: ServiceSpec, container: Any) -> str | None:
    """Why the spec must not stand in for compose's container (another image: the settings'
    engine backend is not the profile compose runs), or None."""
    running = (container.attrs.get("Config", {}) or {}).get("Image")
    if not spec.image or running == spec.image:
        return None
    return (
        f"{spec.name}: compose runs {running} ({container.name}), the sandbox's settings want "
        f"{spec.image}; set SANDBOX_ENGINE_BACKEND to match the profile (cpu for --profile cpu, "
        "cuda for --profile gpu)"
    )


# Exit codes of a container stopped on purpose: cleanly, or by SIGTERM/SIGKILL from `stop`.
_STOPPED_CODES = (0, 137, 143)


class DockerRuntime:
    """Finds, starts and stops the compose project's containers; see the module docstring."""

    def __init__(
        self,
        client: Any,
        project: str = "llm-sandbox",
        network: str | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.client = client
        self.project = project
        self.network = network
        self.host = host

    @classmethod
    def from_env(cls, project: str = "llm-sandbox", network: str | None = None) -> DockerRuntime:
        import docker

        return cls(docker.from_env(), project=project, network=network)

    def container_name(self, name: str) -> str:
        """The name of a container the sandbox adds (compose's own end in ``-<index>``)."""
        return f"{self.project}-{name}"

    def labels(self, spec: ServiceSpec) -> dict[str, str]:
        """A container the sandbox adds belongs to the compose project (so `down` can remove the
        network) under a service name of its own (so compose counts it as an orphan, never as
        one of its services)."""
        return {
            **spec.labels,
            LABEL: spec.name,
            PROJECT_LABEL: self.project,
            SERVICE_LABEL: spec.name,
            "com.docker.compose.oneoff": "False",
        }

    def run_kwargs(self, spec: ServiceSpec, aliases: tuple[str, ...] = ()) -> dict[str, Any]:
        """The arguments of ``containers.run`` for a spec (kept separate so tests can read them)."""
        import docker.types

        if not spec.image:
            raise StartError(f"{spec.name}: no container image in its spec")
        container_port = spec.container_port or spec.port
        kwargs: dict[str, Any] = {
            "image": spec.image,
            "command": list(spec.command) or None,
            "name": self.container_name(spec.name),
            "detach": True,
            "environment": dict(spec.env),
            # Published on loopback only, like every service of the sandbox.
            "ports": {f"{container_port}/tcp": (self.host, spec.port)},
            "volumes": {
                host: {"bind": inside, "mode": "ro"} for host, inside in spec.volumes.items()
            },
            "labels": self.labels(spec),
        }
        if self.network:
            kwargs["network"] = self.network
            if aliases:
                kwargs["networking_config"] = {
                    self.network: self.client.api.create_endpoint_config(aliases=list(aliases))
                }
        if spec.cpus:
            kwargs["cpuset_cpus"] = ",".join(str(cpu) for cpu in spec.cpus)
        if spec.shm_size:
            kwargs["shm_size"] = spec.shm_size
        if spec.gpu:
            # One GPU, as compose's engine-gpu reserves: every engine shares it, each with its
            # bounded --gpu-memory-utilization (count=-1 would ask for all of them).
            kwargs["device_requests"] = [
                docker.types.DeviceRequest(count=1, capabilities=[["gpu"]])
            ]
        return kwargs

    # -- finding containers ----------------------------------------------------------------
    def _project_containers(self) -> list[Any]:
        with _engine_errors():
            return list(self.client.containers.list(all=True, filters=self.project_filters()))

    sandbox_name = staticmethod(sandbox_name_of)

    def project_filters(self) -> dict[str, str]:
        """The filter of ``containers.list``: every container of the compose project."""
        return {"label": f"{PROJECT_LABEL}={self.project}"}

    def find(self, name: str) -> Any | None:
        return pick_container(self._project_containers(), name)

    @staticmethod
    def _is_compose_service(container: Any) -> bool:
        return is_compose_service(container)

    # -- Runtime protocol ------------------------------------------------------------------
    def start(self, spec: ServiceSpec) -> ServiceStatus:
        container = self.find(spec.name)
        if container is not None and self._is_compose_service(container):
            config = container.attrs.get("Config", {})
            command = config.get("Cmd") or []
            if spec.name not in RECONFIGURABLE or same_flags(command, spec.command):
                if container.status != "running":
                    with _engine_errors():
                        container.start()
                return self.status(spec.name)
            # An engine change (another KV budget, --max-num-seqs...): compose's container keeps
            # compose.yaml's flags, so a container of the sandbox's takes its place under the
            # same network alias; stopping it brings compose's back (see stop()).
            mismatch = image_mismatch(spec, container)
            if mismatch:
                raise StartError(mismatch)
            with _engine_errors():
                container.stop(timeout=15)
            return self._run(spec, aliases=(spec.name, *COMPOSE_SERVICES[spec.name]))
        if container is not None and container.status == "running":
            return self.status(spec.name)
        if container is not None:
            self.stop(spec.name)
        if spec.name in COMPOSE_SERVICES:
            services = " or ".join(COMPOSE_SERVICES[spec.name])
            raise StartError(
                f"{spec.name}: compose project {self.project!r} has no {services} container; "
                "start it first: docker compose --profile gpu up -d --wait (or --profile cpu)"
            )
        return self._run(spec)

    def _run(self, spec: ServiceSpec, aliases: tuple[str, ...] = ()) -> ServiceStatus:
        import docker.errors

        # Reachable on the project's network by its sandbox name (`loadgen:8300`), whatever the
        # project is called.
        aliases = tuple(dict.fromkeys((spec.name, *aliases)))
        try:
            created = self.client.containers.run(**self.run_kwargs(spec, aliases))
        except docker.errors.DockerException as exc:
            raise StartError(f"{spec.name}: docker could not start {spec.image}: {exc}") from exc
        return ServiceStatus(
            spec.name, ServiceState.RUNNING, detail=f"container {created.short_id}"
        )

    def status(self, name: str) -> ServiceStatus:
        import docker.errors

        container = self.find(name)
        if container is None:
            return ServiceStatus(name, ServiceState.STOPPED)
        try:
            with _engine_errors():
                container.reload()
        except docker.errors.NotFound:
            return ServiceStatus(name, ServiceState.STOPPED)
        state = container.attrs.get("State", {})
        if container.status == "running":
            return ServiceStatus(
                name, ServiceState.RUNNING, pid=state.get("Pid") or None, detail=container.name
            )
        code = state.get("ExitCode")
        if self._is_compose_service(container) and code in _STOPPED_CODES:
            # Stopped by `docker compose stop` or by us: not a crash.
            return ServiceStatus(name, ServiceState.STOPPED, detail=f"{container.name} stopped")
        return ServiceStatus(
            name,
            ServiceState.EXITED,
            exit_code=code,
            detail=f"container {container.name} {container.status}, exit code {code}",
        )

    def stop(self, name: str, timeout_s: float = 15.0) -> ServiceStatus:
        import docker.errors

        container = self.find(name)
        if container is None:
            return ServiceStatus(name, ServiceState.STOPPED)
        try:
            with _engine_errors():
                container.stop(timeout=int(timeout_s))
                if not self._is_compose_service(container):
                    container.remove(force=True)  # compose's own stay, for `up` to start again
        except docker.errors.NotFound:
            pass
        return ServiceStatus(name, ServiceState.STOPPED)

    def names(self) -> list[str]:
        found = {self.sandbox_name(c) for c in self._project_containers()}
        return sorted(name for name in found if name is not None)

    def log_tail(self, name: str, lines: int = 20) -> str:
        container = self.find(name)
        if container is None:
            return ""
        with _engine_errors():
            return bytes(container.logs(tail=lines)).decode(errors="replace")
