"""How a replica of a version is launched, checked, reached and scraped.

``VllmLauncher`` is the real thing: the engine component with the version's settings applied,
as a local process or (compose mode) a container on the compose network. The deployer takes any
object with the same methods, which is how unit tests run stand-in HTTP servers.

The stack's own engine is built the same way: ``stack_engine_component`` is the replica of
version ``stable`` named ``engine`` on the stack's engine port. So there is one way to configure
an engine, and what ``stack/versions.yaml`` says of ``stable`` holds for the engine ``make up``
starts as for every stable replica the autoscaler adds.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Protocol

import httpx

from sandbox.components.base import Component, Readiness, ScrapeTarget
from sandbox.components.engine import CONTAINER_PORT, engine_component
from sandbox.deploy.state import Replica
from sandbox.deploy.versions import (
    DEFAULT_VERSIONS_FILE,
    STABLE,
    EngineVersion,
    load_versions,
    version_settings,
)
from sandbox.runtime.base import ServiceSpec
from sandbox.settings import Mode, Settings

__all__ = [
    "Launcher",
    "VllmLauncher",
    "in_flight_from_metrics",
    "scrape_target",
    "stack_engine_component",
]

_IN_FLIGHT = re.compile(
    r"^vllm:num_requests_(?:running|waiting)(?:\{[^}]*\})?\s+(\S+)", re.MULTILINE
)


class Launcher(Protocol):
    def spec(self, version: EngineVersion, replica: Replica) -> ServiceSpec: ...

    def url(self, name: str, port: int) -> str:
        """Where the gateway reaches the replica."""
        ...

    def address(self, name: str, port: int) -> str:
        """host:port where Prometheus scrapes it."""
        ...

    def check(
        self, version: EngineVersion, replica: Replica, client: httpx.Client
    ) -> Readiness: ...

    def in_flight(self, replica: Replica, client: httpx.Client) -> float | None:
        """Requests the replica is still working on (None when it cannot tell)."""
        ...


def in_flight_from_metrics(text: str) -> float:
    """Running plus waiting requests, from vLLM's /metrics exposition."""
    return sum(float(value) for value in _IN_FLIGHT.findall(text))


def scrape_target(replica: Replica, address: str) -> ScrapeTarget:
    # `version` is the track (stable/canary) as the contract's per-version panels expect;
    # `config` names the configuration it runs, for telling two canaries apart.
    return ScrapeTarget(
        "engine",
        address,
        {"version": replica.track, "replica": replica.name, "config": replica.version},
    )


class VllmLauncher:
    """Replicas of the real vLLM server; see the module docstring."""

    def __init__(self, settings: Settings, mode: Mode | None = None) -> None:
        self.settings = settings
        self.mode = mode or settings.resolve_mode()

    def _compose(self) -> bool:
        return self.mode is Mode.COMPOSE

    def spec(self, version: EngineVersion, replica: Replica) -> ServiceSpec:
        settings = version_settings(self.settings, version)
        base = engine_component(replica.name, replica.track, replica.port).spec(settings)
        return dataclasses.replace(
            base,
            argv=(*base.argv, *version.extra_args),
            command=(*base.command, *version.extra_args),
            labels={**base.labels, "sandbox.track": replica.track, "sandbox.version": version.name},
        )

    def url(self, name: str, port: int) -> str:
        if self._compose():
            # The runtime gives the container its name as alias on the project's network.
            return f"http://{name}:{CONTAINER_PORT}"
        return self.settings.url(port)

    def address(self, name: str, port: int) -> str:
        if self._compose():
            return f"{name}:{CONTAINER_PORT}"
        return f"{self.settings.host}:{port}"

    def check(self, version: EngineVersion, replica: Replica, client: httpx.Client) -> Readiness:
        # From this process the replica answers on the published loopback port in both modes.
        settings = version_settings(self.settings, version)
        return engine_component(replica.name, replica.track, replica.port).check(settings, client)

    def in_flight(self, replica: Replica, client: httpx.Client) -> float | None:
        try:
            response = client.get(f"{self.settings.url(replica.port)}/metrics")
        except httpx.HTTPError:
            return None
        return in_flight_from_metrics(response.text) if response.status_code == 200 else None


def stack_engine_component(versions_file: Path = DEFAULT_VERSIONS_FILE) -> Component:
    """The stack's own engine: the replica of version ``stable`` that ``make up`` starts as the
    service ``engine`` on ``settings.engine_port``. The deployer counts it as a ready stable
    replica and never stops it. The versions file is read when the spec is built, so a bad
    file stops ``make up`` with a message that names it."""
    base = engine_component()

    def replica(settings: Settings) -> Replica:
        return Replica(
            name=base.name,
            version=STABLE,
            track=STABLE,
            port=settings.engine_port,
            url=settings.engine_url,
        )

    def spec(settings: Settings) -> ServiceSpec:
        stable = load_versions(versions_file)[STABLE]
        return VllmLauncher(settings).spec(stable, replica(settings))

    def check(settings: Settings, client: httpx.Client) -> Readiness:
        stable = load_versions(versions_file)[STABLE]
        return VllmLauncher(settings).check(stable, replica(settings), client)

    return dataclasses.replace(base, spec=spec, check=check)
