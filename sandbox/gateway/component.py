"""The gateway as a component of the stack: how to start it, when it is ready, how to scrape it."""

from __future__ import annotations

from sandbox.components.base import Component
from sandbox.components.python_service import PythonService
from sandbox.settings import Settings

__all__ = ["GATEWAY", "gateway_component", "gateway_url"]


def _local_args(settings: Settings) -> tuple[str, ...]:
    # The local engine is "stable"; more engines come from <run_dir>/gateway.json or /admin/engines.
    return (
        "--engine",
        f"engine:stable={settings.engine_url}",
        "--retriever-url",
        settings.url(settings.retriever_port),
        "--otlp-endpoint",
        f"{settings.url(settings.trace_sink_port)}/v1/traces",
        "--config",
        str(settings.run_dir / "gateway.json"),
    )


GATEWAY = PythonService(
    name="gateway",
    module="sandbox.gateway",
    port=lambda settings: settings.gateway_port,
    ready_path="/ready",
    order=30,  # after the engines and the retriever, before Prometheus
    container_port=8000,
    local_args=_local_args,
    container_args=(
        "--engine",
        "engine:stable=http://engine:8000",
        "--retriever-url",
        "http://retriever:8200",
        "--otlp-endpoint",
        "http://otel-collector:4318/v1/traces",
    ),
    env={"TOKENIZERS_PARALLELISM": "false"},
    # Every phase it times is the measurement, and it is light (a few ms of CPU a request): on
    # two cores beside a polling CPU engine, a normal-class process wakes up to 1.8 s late.
    # Measured with it (bench/gateway_overhead.py, 2026-12-07): TTFT ratios 1.01 / 1.05 confined
    # and throughput 0.985 unconfined (0.875 before), but 4.1-4.3 ms of CPU a request (2.6-3.2
    # before). Not the class itself: against the stand-in engine (--standin) it cost 2.50 ms a
    # request real-time and 2.94 ms in the normal class (one run each). Why it rose is open.
    realtime=True,
)


def gateway_url(settings: Settings) -> str:
    return GATEWAY.url(settings)


def gateway_component() -> Component:
    return GATEWAY.component()
