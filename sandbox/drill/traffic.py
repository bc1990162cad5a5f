"""The incident's traffic: the load generator, started through the runtime with a profile.

This is the one seam between the drill and the load generator (``sandbox.loadgen``): the drill
asks ``sandbox.loadgen.component.loadgen_component(profile=...)`` for a ``Component`` and runs
it as service ``loadgen``. The generator must serve its control API (``faults.endpoints``) and
its ``/metrics`` on ``Settings.loadgen_port``.
"""

from __future__ import annotations

from collections.abc import Callable

from sandbox.components.base import Component, wait_component_ready
from sandbox.deploy.targets import write_job_targets
from sandbox.exceptions import SandboxError
from sandbox.runtime.base import Runtime
from sandbox.settings import Settings

__all__ = ["TrafficError", "loadgen_available", "start_traffic", "stop_traffic"]


class TrafficError(SandboxError):
    """The incident's traffic could not be started; the message says why."""


def loadgen_available() -> str | None:
    """None when the load generator can be used, else why not."""
    try:
        from sandbox.loadgen.component import loadgen_component  # noqa: F401
    except ImportError as exc:
        return f"the load generator is missing (sandbox.loadgen.component.loadgen_component: {exc})"
    return None


def _component(profile: str, rate_scale: float) -> Component:
    missing = loadgen_available()
    if missing:
        raise TrafficError(missing)
    from sandbox.loadgen.component import loadgen_component

    return loadgen_component(profile=profile, rate_scale=rate_scale)


def start_traffic(
    settings: Settings,
    runtime: Runtime,
    profile: str,
    progress: Callable[[str], None],
    timeout_s: float = 60.0,
    rate_scale: float = 1.0,
) -> Component:
    """(Re)start the load generator with ``profile`` (its rates times ``rate_scale``) and wait
    until its component is ready."""
    component = _component(profile, rate_scale)
    runtime.stop(component.name, settings.stop_timeout_s)  # a generator of another drill/profile
    status = runtime.start(component.spec(settings))
    # Prometheus discovers the generator from its file, like every other component.
    write_job_targets(settings, "loadgen", component.scrape(settings))
    scaled = f", rates x{rate_scale:.2f}" if rate_scale != 1.0 else ""
    progress(f"started traffic (profile {profile}{scaled}, pid {status.pid})")
    wait_component_ready(component, settings, runtime, timeout_s, fail=TrafficError)
    return component


def stop_traffic(settings: Settings, runtime: Runtime, component: Component | str | None) -> None:
    """Stop the load generator (given as its component, or its service name) and forget its target."""
    if component is not None:
        runtime.stop(
            component if isinstance(component, str) else component.name, settings.stop_timeout_s
        )
        write_job_targets(settings, "loadgen", [])
