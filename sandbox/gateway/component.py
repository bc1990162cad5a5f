"""The gateway as a component of the stack: how to start it, when it is ready, how to scrape it."""

from __future__ import annotations

import sys

import httpx

from sandbox.components.base import Component, Readiness, ScrapeTarget, http_ready
from sandbox.runtime.base import ServiceSpec
from sandbox.settings import REPO_ROOT, Settings

__all__ = ["GATEWAY_IMAGE", "gateway_component", "gateway_url"]

GATEWAY_IMAGE = "llm-sandbox/app:0.1.0"
CONTAINER_PORT = 8000


def gateway_url(settings: Settings) -> str:
    return settings.url(settings.gateway_port)


def _spec(settings: Settings) -> ServiceSpec:
    # The local engine is "stable"; more engines come from <run_dir>/gateway.json or /admin/engines.
    return ServiceSpec(
        name="gateway",
        argv=(
            sys.executable,
            "-m",
            "sandbox.gateway",
            "--host",
            settings.host,
            "--port",
            str(settings.gateway_port),
            "--engine",
            f"engine:stable={settings.engine_url}",
            "--retriever-url",
            settings.url(settings.retriever_port),
            "--otlp-endpoint",
            f"{settings.url(settings.trace_sink_port)}/v1/traces",
            "--config",
            str(settings.run_dir / "gateway.json"),
        ),
        port=settings.gateway_port,
        env={"TOKENIZERS_PARALLELISM": "false"},
        cwd=REPO_ROOT,
        image=GATEWAY_IMAGE,
        command=(
            "python",
            "-m",
            "sandbox.gateway",
            "--host",
            "0.0.0.0",
            "--port",
            str(CONTAINER_PORT),
            "--engine",
            "engine:stable=http://engine:8000",
            "--retriever-url",
            "http://retriever:8200",
            "--otlp-endpoint",
            "http://otel-collector:4318/v1/traces",
        ),
        container_port=CONTAINER_PORT,
    )


def _check(settings: Settings, client: httpx.Client) -> Readiness:
    return http_ready(client, f"{gateway_url(settings)}/ready", "gateway")


def gateway_component() -> Component:
    return Component(
        name="gateway",
        spec=_spec,
        url=gateway_url,
        check=_check,
        scrape=lambda settings: [
            ScrapeTarget("gateway", f"{settings.host}:{settings.gateway_port}", {})
        ],
        order=30,  # after the engines and the retriever, before Prometheus
    )
