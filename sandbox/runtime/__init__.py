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
]


def runtime_for(settings: Settings) -> Runtime:
    """The runtime of the settings' mode: local processes, or containers when Docker answers."""
    if settings.resolve_mode() is Mode.COMPOSE:
        from sandbox.runtime.docker import DockerRuntime

        return DockerRuntime.from_env(network="llm-sandbox_default")
    return LocalRuntime(settings.run_dir)
