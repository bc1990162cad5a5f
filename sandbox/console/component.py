"""The console as a component of the local stack (compose runs Grafana on its port instead)."""

from __future__ import annotations

import sys

from sandbox.components.base import Component, http_ready
from sandbox.runtime.base import ServiceSpec
from sandbox.settings import REPO_ROOT, Settings

__all__ = ["console_component"]


def _spec(settings: Settings) -> ServiceSpec:
    return ServiceSpec(
        name="console",
        argv=(
            sys.executable,
            "-m",
            "sandbox.console",
            "--host",
            settings.host,
            "--port",
            str(settings.console_port),
            "--prometheus-url",
            settings.prometheus_url,
            "--run-dir",
            str(settings.run_dir),
        ),
        port=settings.console_port,
        cwd=REPO_ROOT,
    )


def console_component() -> Component:
    return Component(
        name="console",
        spec=_spec,
        url=lambda settings: settings.console_url,
        check=lambda settings, client: http_ready(
            client, f"{settings.console_url}/health", "console /health"
        ),
        order=95,  # last: it only reads what the others serve and write
    )
