"""The sandbox's own Python services (gateway, retriever, load generator, trace sink) as stack
components: each runs ``python -m sandbox.<module> --host H --port P ...`` locally, and the same
module in the project's image under compose, is ready when one HTTP path answers, and is scraped
under its own job. What differs between them is data, so it is given as data here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import httpx

from sandbox.components.base import Component, Readiness, http_ready
from sandbox.runtime.base import ServiceSpec
from sandbox.settings import REPO_ROOT, Settings

__all__ = ["PROJECT_IMAGE", "PythonService"]

# The project's own image (docker/sandbox.Dockerfile) runs every Python service in compose.
PROJECT_IMAGE = "llm-sandbox/app:0.1.0"

Args = Callable[[Settings], Sequence[str]]


@dataclass(frozen=True)
class PythonService:
    name: str
    module: str  # run as `python -m MODULE`
    port: Callable[[Settings], int]  # its port on the host, from the settings
    ready_path: str  # answers 200 once the service is usable
    order: int  # start order (see Component.order)
    container_port: int | None = None  # None: not run in compose (the collector replaces it)
    local_args: Args = lambda settings: ()  # flags after --host/--port, locally
    container_args: Sequence[str] = ()  # flags after --host/--port, in the container
    env: Mapping[str, str] = field(default_factory=dict)
    nice: int = 0
    realtime: bool = False  # see ServiceSpec.realtime
    scraped: bool = True  # Prometheus scrapes its /metrics under job NAME

    @classmethod
    def local_only(
        cls, name: str, *, port: Callable[[Settings], int], order: int, local_args: Args
    ) -> PythonService:
        """A helper of the local stack only (compose runs another product in its place): it runs
        ``python -m sandbox.NAME``, answers ``/health`` once up and has no /metrics to scrape."""
        return cls(
            name=name,
            module=f"sandbox.{name}",
            port=port,
            ready_path="/health",
            order=order,
            local_args=local_args,
            scraped=False,
        )

    def url(self, settings: Settings) -> str:
        return settings.url(self.port(settings))

    def spec(self, settings: Settings) -> ServiceSpec:
        in_compose = self.container_port is not None
        return ServiceSpec(
            name=self.name,
            # The interpreter running `sandbox` is the sandbox's venv (.venv/bin/python).
            argv=(
                sys.executable,
                "-m",
                self.module,
                "--host",
                settings.host,
                "--port",
                str(self.port(settings)),
                *self.local_args(settings),
            ),
            port=self.port(settings),
            env=dict(self.env),
            cwd=REPO_ROOT,
            nice=self.nice,
            realtime=self.realtime,
            image=PROJECT_IMAGE if in_compose else None,
            command=(
                (
                    "python",
                    "-m",
                    self.module,
                    "--host",
                    "0.0.0.0",
                    "--port",
                    str(self.container_port),
                    *self.container_args,
                )
                if in_compose
                else ()
            ),
            container_port=self.container_port,
        )

    def check(self, settings: Settings, client: httpx.Client) -> Readiness:
        return http_ready(
            client, f"{self.url(settings)}{self.ready_path}", f"{self.name} {self.ready_path}"
        )

    def component(self) -> Component:
        return Component.on_port(
            self.name,
            self.port,
            spec=self.spec,
            check=self.check,
            order=self.order,
            scraped=self.scraped,
        )
