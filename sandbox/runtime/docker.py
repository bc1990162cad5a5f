"""Docker runtime: each service is a container, managed through the Docker SDK for Python.

Compose mode starts the fixed stack from ``compose.yaml``; this runtime is what the sandbox uses
for what changes while a drill runs (extra engine replicas, a canary). Containers are named
``sandbox-<service>`` and labelled ``sandbox.component=<service>`` so ``names()`` finds them
after a crash.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sandbox.runtime.base import (
    RuntimeFailure,
    ServiceSpec,
    ServiceState,
    ServiceStatus,
    StartError,
)

__all__ = ["LABEL", "DockerRuntime", "docker_available"]

LABEL = "sandbox.component"


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


class DockerRuntime:
    """Starts and stops containers for ServiceSpecs; see the module docstring."""

    def __init__(self, client: Any, network: str | None = None, host: str = "127.0.0.1") -> None:
        self.client = client
        self.network = network
        self.host = host

    @classmethod
    def from_env(cls, network: str | None = None) -> DockerRuntime:
        import docker

        return cls(docker.from_env(), network=network)

    @staticmethod
    def container_name(name: str) -> str:
        return f"sandbox-{name}"

    def run_kwargs(self, spec: ServiceSpec) -> dict[str, Any]:
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
            "labels": {LABEL: spec.name, **spec.labels},
        }
        if self.network:
            kwargs["network"] = self.network
        if spec.cpus:
            kwargs["cpuset_cpus"] = ",".join(str(cpu) for cpu in spec.cpus)
        if spec.gpu:
            kwargs["device_requests"] = [
                docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])
            ]
        return kwargs

    def start(self, spec: ServiceSpec) -> ServiceStatus:
        import docker.errors

        current = self.status(spec.name)
        if current.state is ServiceState.RUNNING:
            return current
        if current.state is ServiceState.EXITED:
            self.stop(spec.name)
        try:
            container = self.client.containers.run(**self.run_kwargs(spec))
        except docker.errors.DockerException as exc:
            raise StartError(f"{spec.name}: docker could not start {spec.image}: {exc}") from exc
        return ServiceStatus(
            spec.name, ServiceState.RUNNING, detail=f"container {container.short_id}"
        )

    def status(self, name: str) -> ServiceStatus:
        import docker.errors

        try:
            with _engine_errors():
                container = self.client.containers.get(self.container_name(name))
                container.reload()
        except docker.errors.NotFound:
            return ServiceStatus(name, ServiceState.STOPPED)
        state = container.attrs.get("State", {})
        if container.status == "running":
            return ServiceStatus(name, ServiceState.RUNNING, pid=state.get("Pid") or None)
        code = state.get("ExitCode")
        return ServiceStatus(
            name,
            ServiceState.EXITED,
            exit_code=code,
            detail=f"container {container.status}, exit code {code}",
        )

    def stop(self, name: str, timeout_s: float = 15.0) -> ServiceStatus:
        import docker.errors

        try:
            container = self.client.containers.get(self.container_name(name))
        except docker.errors.NotFound:
            return ServiceStatus(name, ServiceState.STOPPED)
        container.stop(timeout=int(timeout_s))
        container.remove(force=True)
        return ServiceStatus(name, ServiceState.STOPPED)

    def names(self) -> list[str]:
        with _engine_errors():
            containers = self.client.containers.list(all=True, filters={"label": LABEL})
        return sorted(c.labels[LABEL] for c in containers)

    def log_tail(self, name: str, lines: int = 20) -> str:
        import docker.errors

        try:
            container = self.client.containers.get(self.container_name(name))
        except docker.errors.NotFound:
            return ""
        return bytes(container.logs(tail=lines)).decode(errors="replace")
