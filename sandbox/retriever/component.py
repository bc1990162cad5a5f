"""The retriever as a component of the stack: how to start it, when it is ready, how to scrape it."""

from __future__ import annotations

from sandbox.components.base import Component
from sandbox.components.python_service import PythonService

__all__ = ["RETRIEVER", "retriever_component"]

RETRIEVER = PythonService(
    name="retriever",
    module="sandbox.retriever",
    port=lambda settings: settings.retriever_port,
    ready_path="/ready",  # 200 once the model is loaded and the index built
    order=20,
    container_port=8200,
    local_args=lambda settings: (
        "--otlp-endpoint",
        f"{settings.url(settings.trace_sink_port)}/v1/traces",
    ),
    container_args=(
        "--qdrant-url",
        "http://qdrant:6333",
        "--otlp-endpoint",
        "http://otel-collector:4318/v1/traces",
    ),
    env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"},
)


def retriever_component() -> Component:
    return RETRIEVER.component()
