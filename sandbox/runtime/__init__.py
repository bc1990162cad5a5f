"""Runtimes: the only code that starts processes or containers (see ``base.Runtime``)."""

from __future__ import annotations

from sandbox.runtime.base import Runtime, ServiceSpec, ServiceState, ServiceStatus, StartError
from sandbox.runtime.local import LocalRuntime
from sandbox.settings import Mode, Settings

__all__ = [
    "LocalRuntime",
    "Runtime",
    "ServiceSpec",
    "ServiceState",
    "ServiceStatus",
    "StartError",
    "runtime_for",
    "webhook_bind_host",
]


def runtime_for(settings: Settings) -> Runtime:
    """The runtime of the settings' mode: local processes, or containers when Docker answers."""
    if settings.resolve_mode() is Mode.COMPOSE:
        from sandbox.runtime.docker import DockerRuntime

        project = settings.compose_project
        return DockerRuntime.from_env(project=project, network=f"{project}_default")
    return LocalRuntime(settings.run_dir)


def webhook_bind_host(settings: Settings, runtime: Runtime) -> str:
    """Where the drill's alert webhook listens. Locally: the settings' host, like every service.
    In compose, Alertmanager's container posts to ``host.docker.internal`` (the host's bridge
    address), which a socket on 127.0.0.1 never sees: ``host_gateway_bind`` then."""
    from sandbox.runtime.docker import DockerRuntime

    return settings.host_gateway_bind if isinstance(runtime, DockerRuntime) else settings.host
