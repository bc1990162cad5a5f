"""The trace sink as a component of the local stack (compose uses the OTel Collector instead)."""

from __future__ import annotations

from sandbox.components.base import Component
from sandbox.components.python_service import PythonService
from sandbox.settings import Settings
from sandbox.tracesink.store import spans_path

__all__ = ["trace_sink_component", "trace_sink_endpoint"]

TRACE_SINK = PythonService.local_only(
    "tracesink",
    port=lambda settings: settings.trace_sink_port,
    # First: the engine's start-up spans are sent while it loads.
    order=5,
    local_args=lambda settings: ("--out", str(spans_path(settings.run_dir))),
)


def trace_sink_endpoint(settings: Settings) -> str:
    """The OTLP/HTTP traces URL every local process exports to."""
    return f"{TRACE_SINK.url(settings)}/v1/traces"


def trace_sink_component() -> Component:
    return TRACE_SINK.component()
