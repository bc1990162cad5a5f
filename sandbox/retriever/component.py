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
    # In production the retriever has a host of its own. On two shared cores, at the default
    # priority, the CPU engine starved its query embedding (a few ms of work) to an embed p99 of
    # 0.9-1.7 s with no fault injected, so slow-retrieval's baseline was never steady and RAG
    # requests reached the engine in bursts. Its work is small: the priority costs the engine little.
    nice=-5,
)


def retriever_component() -> Component:
    return RETRIEVER.component()
