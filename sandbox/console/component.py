"""The console as a component of the local stack (compose runs Grafana on its port instead)."""

from __future__ import annotations

from sandbox.components.base import Component
from sandbox.components.python_service import PythonService

__all__ = ["CONSOLE", "console_component"]

CONSOLE = PythonService(
    name="console",
    module="sandbox.console",
    port=lambda settings: settings.console_port,
    ready_path="/health",
    order=95,  # last: it only reads what the others serve and write
    local_args=lambda settings: (
        "--prometheus-url",
        settings.prometheus_url,
        "--run-dir",
        str(settings.run_dir),
    ),
    scraped=False,  # no /metrics of its own
)


def console_component() -> Component:
    return CONSOLE.component()
