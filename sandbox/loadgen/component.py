"""The load generator as a component of the stack (service ``loadgen``), as the drill runs it.

``loadgen_component(profile)`` starts ``python -m sandbox.loadgen PROFILE`` with the stack's
ports; it is ready when its ``/health`` answers (the run has started), and Prometheus scrapes
its ``/metrics`` under job ``loadgen``. A drill's traffic runs until the drill stops it, so the
service's duration is long but bounded (``SERVICE_DURATION_S``).
"""

from __future__ import annotations

from sandbox.components.base import Component
from sandbox.components.python_service import PythonService
from sandbox.loadgen.target import default_target

__all__ = ["SERVICE_DURATION_S", "loadgen_component"]

# Longer than any drill; a forgotten generator still ends on its own.
SERVICE_DURATION_S = 6 * 3600.0


def loadgen_component(
    profile: str = "baseline", seed: int | None = None, rate_scale: float = 1.0
) -> Component:
    run = (
        profile,
        "--duration",
        str(SERVICE_DURATION_S),
        *(("--seed", str(seed)) if seed is not None else ()),
        *(("--rate-scale", f"{rate_scale:.4f}") if rate_scale != 1.0 else ()),
    )
    return PythonService(
        name="loadgen",
        module="sandbox.loadgen",
        port=lambda settings: settings.loadgen_port,
        ready_path="/health",  # 200 once the run has started
        order=60,
        container_port=8300,
        local_args=lambda settings: (
            *run,
            "--target",
            default_target(settings),
            "--out",
            str(settings.run_dir / "loadgen" / "service"),
        ),
        container_args=(*run, "--target", "http://gateway:8000", "--out", "/data/loadgen"),
        env={"TOKENIZERS_PARALLELISM": "false"},
        # Its start times are the measurement: keep them while the engine fills the cores. A
        # nice value alone did not (start-time error p99 62-206 ms, max 412 ms, in kv-exhaustion
        # on 2026-12-07); the real-time class does. nice -5 stays for a run without root.
        nice=-5,
        realtime=True,
    ).component()
