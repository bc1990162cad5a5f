"""The RAG retriever: embeds a query, searches a Qdrant index of the project's own notes, reranks.

A separate HTTP service (``python -m sandbox.retriever``) that the gateway calls for RAG
requests. Each request's time is split into the contract's retrieval parts (``embed``,
``search``, ``rerank``), reported in the response, as Prometheus histograms with trace
exemplars, and as OpenTelemetry spans. A fault hook adds latency to one part at run time.
"""

from __future__ import annotations

__all__: list[str] = []
