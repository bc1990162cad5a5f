"""The trace sink as a component of the local stack (compose uses the OTel Collector instead)."""

from __future__ import annotations

import sys

from sandbox.components.base import Component, http_ready
from sandbox.runtime.base import ServiceSpec
from sandbox.settings import REPO_ROOT, Settings
from sandbox.tracesink.store import spans_path

__all__ = ["trace_sink_component", "trace_sink_endpoint"]


def trace_sink_endpoint(settings: Settings) -> str:
    """The OTLP/HTTP traces URL every local process exports to."""
    return f"{settings.url(settings.trace_sink_port)}/v1/traces"


def _spec(settings: Settings) -> ServiceSpec:
    return ServiceSpec(
        name="tracesink",
        argv=(
            sys.executable,
            "-m",
            "sandbox.tracesink",
            "--host",
            settings.host,
            "--port",
            str(settings.trace_sink_port),
            "--out",
            str(spans_path(settings.run_dir)),
        ),
        port=settings.trace_sink_port,
        cwd=REPO_ROOT,
    )


def trace_sink_component() -> Component:
    return Component(
        name="tracesink",
        spec=_spec,
        url=lambda settings: settings.url(settings.trace_sink_port),
        check=lambda settings, client: http_ready(
            client, f"{settings.url(settings.trace_sink_port)}/health", "trace sink /health"
        ),
        # First: the engine's start-up spans are sent while it loads.
        order=5,
    )
