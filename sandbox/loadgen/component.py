"""The load generator as a component of the stack (service ``loadgen``), as the drill runs it.

``loadgen_component(profile)`` starts ``python -m sandbox.loadgen PROFILE`` with the stack's
ports; it is ready when its ``/health`` answers (the run has started), and Prometheus scrapes
its ``/metrics`` under job ``loadgen``. A drill's traffic runs until the drill stops it, so the
service's duration is long but bounded (``SERVICE_DURATION_S``).
"""

from __future__ import annotations

import sys

import httpx

from sandbox.components.base import Component, Readiness, ScrapeTarget, http_ready
from sandbox.loadgen.target import default_target
from sandbox.runtime.base import ServiceSpec
from sandbox.settings import REPO_ROOT, Settings

__all__ = ["SERVICE_DURATION_S", "loadgen_component"]

# Longer than any drill; a forgotten generator still ends on its own.
SERVICE_DURATION_S = 6 * 3600.0
LOADGEN_IMAGE = "llm-sandbox/app:0.1.0"
CONTAINER_PORT = 8300


def loadgen_component(profile: str = "baseline", seed: int | None = None) -> Component:
    def spec(settings: Settings) -> ServiceSpec:
        out = settings.run_dir / "loadgen" / "service"
        args = (
            profile,
            "--duration",
            str(SERVICE_DURATION_S),
            *(("--seed", str(seed)) if seed is not None else ()),
        )
        return ServiceSpec(
            name="loadgen",
            argv=(
                sys.executable,
                "-m",
                "sandbox.loadgen",
                *args,
                "--target",
                default_target(settings),
                "--host",
                settings.host,
                "--port",
                str(settings.loadgen_port),
                "--out",
                str(out),
            ),
            port=settings.loadgen_port,
            env={"TOKENIZERS_PARALLELISM": "false"},
            # Its start times are the measurement: keep them while the engine fills the cores.
            nice=-5,
            cwd=REPO_ROOT,
            image=LOADGEN_IMAGE,
            command=(
                "python",
                "-m",
                "sandbox.loadgen",
                *args,
                "--target",
                "http://gateway:8000",
                "--host",
                "0.0.0.0",
                "--port",
                str(CONTAINER_PORT),
                "--out",
                "/data/loadgen",
            ),
            container_port=CONTAINER_PORT,
        )

    def check(settings: Settings, client: httpx.Client) -> Readiness:
        return http_ready(client, f"{settings.url(settings.loadgen_port)}/health", "load generator")

    return Component(
        name="loadgen",
        spec=spec,
        url=lambda settings: settings.url(settings.loadgen_port),
        check=check,
        scrape=lambda settings: [
            ScrapeTarget("loadgen", f"{settings.host}:{settings.loadgen_port}", {})
        ],
        order=60,
    )
