"""Engine and KV cache: the engine.queue, engine.prefill and engine.decode phases, per replica."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from dashboards.panels import (
    ENGINE,
    TPOT,
    PanelBuilder,
    Query,
    Unit,
    dashboard,
    percentile_panel,
    sli_panel,
    timeseries_panel,
)

__all__ = ["UID", "engine_dashboard"]

UID = "sandbox-engine"


def per_replica_timeseries(
    panel_id: int,
    title: str,
    description: str,
    metric: str,
    *,
    unit: str = Unit.SECONDS,
) -> PanelBuilder:
    """p50/p95/p99 of one of vLLM's histograms (its recorded bucket rate), one set per replica."""
    return percentile_panel(
        panel_id,
        title,
        description,
        f"version_replica:{metric}_bucket:rate1m",
        ENGINE,
        by=("replica",),
        unit=unit,
    )


def requests_timeseries() -> PanelBuilder:
    return timeseries_panel(
        1,
        "Requests running and waiting",
        "Sequences in the running batch, and requests waiting to be scheduled by reason: capacity = no free KV blocks or batch slots.",
        Unit.COUNT,
        [
            Query(
                f"sum by (replica) (vllm:num_requests_running{{{ENGINE}}})", "running {{replica}}"
            ),
            Query(
                f"sum by (replica, reason) (vllm:num_requests_waiting_by_reason{{{ENGINE}}})",
                "waiting ({{reason}}) {{replica}}",
            ),
        ],
    )


def kv_cache_timeseries() -> PanelBuilder:
    return timeseries_panel(
        2,
        "KV cache usage",
        "Share of KV cache blocks in use. Near 1 with preemptions (next panel) means sequences no longer fit: KV exhaustion.",
        Unit.RATIO,
        [Query(f"version_replica:vllm_kv_cache_usage_perc:max{{{ENGINE}}}", "{{replica}}")],
        thresholds=[(None, "green"), (0.8, "orange"), (0.9, "red")],
        max_value=1,
    )


def preemptions_timeseries() -> PanelBuilder:
    return timeseries_panel(
        3,
        "Preemptions per second",
        "Running sequences evicted because no KV block was free; they are recomputed later (wasted prefill, longer TPOT).",
        Unit.EVENTS_PER_S,
        [Query(f"version_replica:vllm_num_preemptions:rate1m{{{ENGINE}}}", "{{replica}}")],
    )


def tokens_timeseries() -> PanelBuilder:
    return timeseries_panel(
        4,
        "Prompt and generation tokens per second",
        "Throughput of prefill (prompt tokens) and decode (generated tokens) per replica.",
        Unit.TOKENS_PER_S,
        [
            Query(f"version_replica:vllm_prompt_tokens:rate1m{{{ENGINE}}}", "prompt {{replica}}"),
            Query(
                f"version_replica:vllm_generation_tokens:rate1m{{{ENGINE}}}",
                "generation {{replica}}",
            ),
        ],
    )


def engine_dashboard() -> Dashboard:
    return dashboard(
        UID,
        "Engine and KV cache",
        "vLLM's own view: batch, KV cache, preemptions, token throughput and the queue/prefill/decode phases, per replica.",
        [
            requests_timeseries(),
            kv_cache_timeseries(),
            preemptions_timeseries(),
            tokens_timeseries(),
            per_replica_timeseries(
                5,
                "engine.queue: queue time p50/p95/p99",
                "Time from arrival in vLLM to being scheduled (no bucket below 0.3 s).",
                "vllm_request_queue_time_seconds",
            ),
            per_replica_timeseries(
                6,
                "engine.prefill: prefill time p50/p95/p99",
                "Time of the forward pass over the prompt.",
                "vllm_request_prefill_time_seconds",
            ),
            per_replica_timeseries(
                7,
                "engine.decode: decode time p50/p95/p99",
                "Time from the first to the last generated token.",
                "vllm_request_decode_time_seconds",
            ),
            per_replica_timeseries(
                8,
                "Engine TTFT p50/p95/p99",
                "vLLM's time to first token: engine.queue + engine.prefill, without the gateway's phases.",
                "vllm_time_to_first_token_seconds",
            ),
            sli_panel(
                9,
                "Time per output token p50/p95/p99",
                "vLLM's mean time per output token of each request. SLO: p99 < 0.25 s.",
                TPOT,
                by=("replica",),
            ),
            per_replica_timeseries(
                10,
                "Prompt length p50/p95/p99",
                "Prompt tokens per request: long prompts cost prefill time and KV blocks.",
                "vllm_request_prompt_tokens",
                unit=Unit.TOKENS,
            ),
            per_replica_timeseries(
                11,
                "Output length p50/p95/p99",
                "Generated tokens per request: long outputs hold KV blocks for longer.",
                "vllm_request_generation_tokens",
                unit=Unit.TOKENS,
            ),
        ],
    )
