"""The retriever as a component of the stack: how to start it, when it is ready, how to scrape it."""

from __future__ import annotations

import sys

import httpx

from sandbox.components.base import Component, Readiness, ScrapeTarget, http_ready
from sandbox.runtime.base import ServiceSpec
from sandbox.settings import REPO_ROOT, Settings

__all__ = ["RETRIEVER_IMAGE", "retriever_component"]

# The project's own image (built from the repository's Dockerfile) in compose.
RETRIEVER_IMAGE = "llm-sandbox/app:0.1.0"
CONTAINER_PORT = 8200


def _spec(settings: Settings) -> ServiceSpec:
    otlp = f"{settings.url(settings.trace_sink_port)}/v1/traces"
    return ServiceSpec(
        name="retriever",
        # The interpreter running `sandbox` is the sandbox's venv (.venv/bin/python).
        argv=(
            sys.executable,
            "-m",
            "sandbox.retriever",
            "--host",
            settings.host,
            "--port",
            str(settings.retriever_port),
            "--otlp-endpoint",
            otlp,
        ),
        port=settings.retriever_port,
        env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"},
        cwd=REPO_ROOT,
        image=RETRIEVER_IMAGE,
        command=(
            "python",
            "-m",
            "sandbox.retriever",
            "--host",
            "0.0.0.0",
            "--port",
            str(CONTAINER_PORT),
            "--qdrant-url",
            "http://qdrant:6333",
            "--otlp-endpoint",
            "http://otel-collector:4318/v1/traces",
        ),
        container_port=CONTAINER_PORT,
    )


def _check(settings: Settings, client: httpx.Client) -> Readiness:
    return http_ready(client, f"{settings.url(settings.retriever_port)}/ready", "retriever")


def retriever_component() -> Component:
    return Component(
        name="retriever",
        spec=_spec,
        url=lambda settings: settings.url(settings.retriever_port),
        check=_check,
        scrape=lambda settings: [
            ScrapeTarget("retriever", f"{settings.host}:{settings.retriever_port}", {})
        ],
        order=20,
    )
