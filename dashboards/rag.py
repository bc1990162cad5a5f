"""RAG retrieval: the retrieval phase and its steps (embed, search, rerank)."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from dashboards.panels import (
    GATEWAY,
    PanelBuilder,
    Query,
    Unit,
    dashboard,
    percentile_panel,
    timeseries_panel,
)

__all__ = ["UID", "rag_dashboard"]

UID = "sandbox-rag"

PARTS = "step:sandbox_retriever_step_seconds_bucket:rate1m"


def retrieval_phase_timeseries() -> PanelBuilder:
    return percentile_panel(
        1,
        "Retrieval phase p50/p95/p99 (as RAG requests waited)",
        "The gateway's retrieval phase: the call to the retriever, capped by the gateway's RAG timeout. Warning above p95 1 s.",
        "phase_version_tenant:sandbox_gateway_phase_seconds_bucket:rate1m",
        f'phase="retrieval", {GATEWAY}',
        slo=1.0,
    )


def part_timeseries(panel_id: int, part: str, description: str) -> PanelBuilder:
    return percentile_panel(
        panel_id, f"{part} p50/p95/p99", description, PARTS, f'step="{part}"', width=8
    )


def retriever_duration_timeseries() -> PanelBuilder:
    return percentile_panel(
        5,
        "Retriever /search duration p50/p95/p99",
        "The retriever's own time per search, embed + search + rerank; it keeps counting after the gateway gave up.",
        "job:sandbox_retriever_request_duration_seconds_bucket:rate1m",
    )


def fallbacks_timeseries() -> PanelBuilder:
    return timeseries_panel(
        6,
        "Retrieval timeouts and fallbacks per second",
        "RAG requests answered without context because the retriever timed out or failed, and the retriever's 5xx answers.",
        Unit.REQUESTS_PER_S,
        [
            Query("reason:sandbox_gateway_retrieval_fallbacks:rate1m", "fallback: {{reason}}"),
            Query('sum(status:sandbox_retriever_requests:rate1m{status="5xx"})', "retriever 5xx"),
        ],
    )


def retrieval_share_timeseries() -> PanelBuilder:
    return timeseries_panel(
        7,
        "Share of end-to-end time spent in retrieval",
        "Seconds spent in the retrieval phase per second of end-to-end time, over every request (RAG or not).",
        Unit.RATIO,
        [
            Query(
                f'sum(phase_version_tenant:sandbox_gateway_phase_seconds_sum:rate1m{{phase="retrieval", {GATEWAY}}})'
                f" / sum(version_tenant:sandbox_gateway_request_duration_seconds_sum:rate1m{{{GATEWAY}}})",
                "retrieval share",
            )
        ],
        max_value=1,
    )


def searches_timeseries() -> PanelBuilder:
    return timeseries_panel(
        8,
        "Retriever searches per second by status",
        "Calls to the retriever's /search by HTTP status class.",
        Unit.REQUESTS_PER_S,
        [Query("status:sandbox_retriever_requests:rate1m", "{{status}}")],
    )


def rag_dashboard() -> Dashboard:
    return dashboard(
        UID,
        "RAG retrieval",
        "Where a RAG request's retrieval time goes: embed, search, rerank; timeouts, fallbacks, and its share of end-to-end time.",
        [
            retrieval_phase_timeseries(),
            retriever_duration_timeseries(),
            part_timeseries(2, "embed", "Embedding the query with the sentence-transformer (CPU)."),
            part_timeseries(3, "search", "Vector search in Qdrant."),
            part_timeseries(4, "rerank", "Reranking the candidates."),
            fallbacks_timeseries(),
            retrieval_share_timeseries(),
            searches_timeseries(),
        ],
    )
