"""The console as a component of the local stack (compose runs Grafana on its port instead)."""

from __future__ import annotations

from sandbox.components.base import Component
from sandbox.components.python_service import PythonService

__all__ = ["CONSOLE", "console_component"]

CONSOLE = PythonService.local_only(
    "console",
    port=lambda settings: settings.console_port,
    order=95,  # last: it only reads what the others serve and write
    local_args=lambda settings: (
        "--prometheus-url",
        settings.prometheus_url,
        "--run-dir",
        str(settings.run_dir),
    ),
)


def console_component() -> Component:
    return CONSOLE.component()
