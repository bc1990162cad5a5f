"""Rollout: every signal that judges a model version, split by version (stable, canary, shadow)."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from dashboards.panels import (
    ENGINE,
    ERROR_BUDGET,
    GATEWAY,
    REQUESTS,
    TPOT,
    TTFT,
    VERSION,
    PanelBuilder,
    Query,
    Sli,
    Unit,
    dashboard,
    percentile_panel,
    rate_by,
    sli_panel,
    slo_line,
    timeseries_panel,
)

__all__ = ["UID", "rollout_dashboard"]

UID = "sandbox-rollout"


def weight_timeseries() -> PanelBuilder:
    return timeseries_panel(
        1,
        "Traffic weight by version",
        "Each version's share of the routing weights at the gateway (shadow traffic is mirrored on top).",
        Unit.RATIO,
        [
            Query(
                f"sandbox_gateway_route_weight{{{VERSION}}} / ignoring (version) group_left () "
                "sum without (version) (sandbox_gateway_route_weight)",
                "{{version}}",
            )
        ],
        max_value=1,
    )


def requests_timeseries() -> PanelBuilder:
    return timeseries_panel(
        2,
        "Requests per second by version",
        "Answers by version and status class.",
        Unit.REQUESTS_PER_S,
        [
            Query(
                f"sum by (version, status_class) ({REQUESTS}{{{GATEWAY}}})",
                "{{version}} {{status_class}}",
            )
        ],
    )


def error_ratio_timeseries() -> PanelBuilder:
    errors = f'sum by (version) ({REQUESTS}{{status_class="5xx", {GATEWAY}}})'
    total = f"sum by (version) ({REQUESTS}{{{GATEWAY}}})"
    return timeseries_panel(
        3,
        "5xx ratio by version",
        "Share of each version's requests answered with a 5xx. A canary above stable is the canary's fault; both up is the platform's.",
        Unit.RATIO,
        [Query(f"({errors} or {total} * 0) / {total}", "{{version}}")],
        thresholds=slo_line(ERROR_BUDGET),
    )


def sli_by_version_timeseries(panel_id: int, sli: Sli, description: str) -> PanelBuilder:
    """An SLI's p50/p95/p99 per version, titled after the SLI, with its SLO line."""
    return sli_panel(
        panel_id, f"{sli.name} p50/p95/p99 by version", description, sli, by=("version",)
    )


def output_length_timeseries() -> PanelBuilder:
    return percentile_panel(
        6,
        "Output length p50/p95/p99 by version",
        "Generated tokens per request per version: a version that stops early or rambles shows here first.",
        "version_replica:vllm_request_generation_tokens_bucket:rate1m",
        ENGINE,
        by=("version",),
        unit=Unit.TOKENS,
    )


def upstream_errors_timeseries() -> PanelBuilder:
    errors = rate_by("sandbox_gateway_upstream_errors_total", ("version", "kind"), VERSION)
    # Each version in rotation shows 0 when none happened, instead of no series.
    none = f"sum by (version) (sandbox_gateway_ready_engines{{{VERSION}}}) * 0"
    return timeseries_panel(
        7,
        "Upstream errors per second by version and kind",
        "Failed calls from the gateway to an engine: connect, timeout, or an error status. Zero per version when none happened.",
        Unit.EVENTS_PER_S,
        [Query(f"{errors.expr} or {none}", errors.legend)],
    )


def ready_engines_timeseries() -> PanelBuilder:
    return timeseries_panel(
        8,
        "Ready engines by version",
        "Engines in the gateway's rotation per version.",
        Unit.COUNT,
        [Query(f"sandbox_gateway_ready_engines{{{VERSION}}}", "{{version}}")],
    )


def shadow_timeseries() -> PanelBuilder:
    return timeseries_panel(
        9,
        "Shadow requests per second by outcome",
        "Mirrored requests sent to a shadow version: ok, error, or skipped (too many in flight).",
        Unit.REQUESTS_PER_S,
        [rate_by("sandbox_gateway_shadow_requests_total", ("version", "outcome"), VERSION)],
    )


def rollout_dashboard() -> Dashboard:
    return dashboard(
        UID,
        "Rollout: versions side by side",
        "Stable, canary and shadow compared on errors, latency and output: decide to promote or roll back.",
        [
            weight_timeseries(),
            requests_timeseries(),
            error_ratio_timeseries(),
            sli_by_version_timeseries(
                4, TTFT, "Time to first token at the gateway per version. SLO: p99 < 2 s."
            ),
            sli_by_version_timeseries(
                5,
                TPOT,
                "vLLM's time per output token per version (shadow engines included). SLO: p99 < 0.25 s.",
            ),
            output_length_timeseries(),
            upstream_errors_timeseries(),
            ready_engines_timeseries(),
            shadow_timeseries(),
        ],
    )
