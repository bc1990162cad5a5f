"""Serving overview: where does the time go."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from dashboards.panels import (
    CLIENT,
    ENGINE,
    ERROR_BUDGET,
    GATEWAY,
    REQUESTS,
    TPOT,
    TTFT,
    PanelBuilder,
    Query,
    Unit,
    dashboard,
    percentile_panel,
    percentiles,
    sli_panel,
    sli_stat,
    slo_line,
    stat_panel,
    timeseries_panel,
)
from sandbox.phases import (
    BUDGET_PHASES,
    ENGINE_PHASES,
    GATEWAY_PHASE_METRIC,
    UPSTREAM_PHASES,
    Phase,
)

__all__ = ["UID", "overview_dashboard"]

UID = "sandbox-overview"

PHASE_SUM = "phase_version_tenant:sandbox_gateway_phase_seconds_sum:rate1m"
ALL_REQUESTS = f"sum({REQUESTS}{{{GATEWAY}}})"
ANSWERED_BY_VERSION = f'sum by (version) ({REQUESTS}{{status_class="2xx", {GATEWAY}}})'


def slo_stats() -> list[PanelBuilder]:
    return [
        sli_stat(
            1,
            "TTFT p95",
            "95th percentile of time to first token at the gateway over the last minute.",
            TTFT,
            0.95,
        ),
        sli_stat(
            2,
            "TTFT p99 (SLO < 2 s)",
            "99th percentile of time to first token at the gateway; the page fires above 2 s.",
            TTFT,
            0.99,
        ),
        sli_stat(
            3,
            "TPOT p95",
            "95th percentile of vLLM's time per output token (per request); SLO p99 < 0.25 s.",
            TPOT,
            0.95,
        ),
        stat_panel(
            4,
            "Error ratio",
            "Share of requests answered with a 5xx over the last minute; the error budget is 1%.",
            Unit.RATIO,
            Query(
                f'(sum({REQUESTS}{{status_class="5xx", {GATEWAY}}}) or vector(0)) / {ALL_REQUESTS}',
                "errors",
            ),
            thresholds=slo_line(ERROR_BUDGET),
            decimals=2,
        ),
        stat_panel(
            5,
            "Request rate",
            "Requests per second answered by the gateway (every status).",
            Unit.REQUESTS_PER_S,
            Query(ALL_REQUESTS, "requests"),
            decimals=2,
        ),
        stat_panel(
            6,
            "Goodput",
            "Requests per second whose first token arrived within 2.5 s (the histogram bucket next above the 2 s SLO).",
            Unit.REQUESTS_PER_S,
            Query(f'sum({TTFT.bucket_rate}{{le="2.5", {TTFT.selector}}})', "goodput"),
            decimals=2,
        ),
    ]


def _engine_phase_seconds(phase: Phase) -> str:
    """Seconds per second of one engine phase spent by answered user requests.

    vLLM's sums cover every request an engine served, shadow copies included, and replicas of
    a version differ: so each version's mean per engine request is weighted by the requests
    the gateway answered from that version, instead of stacking the replicas' sums.
    """
    assert phase.metric is not None
    recorded = f"version_replica:{phase.metric.replace(':', '_')}"
    return (
        f"sum(sum by (version) ({recorded}_sum:rate1m{{{ENGINE}}})"
        f" / sum by (version) ({recorded}_count:rate1m{{{ENGINE}}})"
        f" * on (version) {ANSWERED_BY_VERSION})"
    )


def _gateway_phase_seconds(names: list[str]) -> str:
    match = f'phase="{names[0]}"' if len(names) == 1 else f'phase=~"{"|".join(names)}"'
    return f"sum({PHASE_SUM}{{{match}, {GATEWAY}}})"


def budget_queries() -> list[Query]:
    """One stacked series per phase of the latency budget (``sandbox.phases``), in its order."""
    queries = []
    for phase in BUDGET_PHASES:
        if phase.owner == "engine":
            seconds = _engine_phase_seconds(phase)
        elif phase.metric == GATEWAY_PHASE_METRIC:
            seconds = _gateway_phase_seconds([phase.name])
        elif phase.name == "network":
            # What the gateway waited on the engine call, less what the engine accounts for.
            engine = " + ".join(f"({_engine_phase_seconds(p)} or vector(0))" for p in ENGINE_PHASES)
            upstream = _gateway_phase_seconds([p.name for p in UPSTREAM_PHASES])
            seconds = f"clamp_min({upstream} - ({engine}), 0)"
        else:
            raise ValueError(f"no query for the budget phase {phase.name}")
        queries.append(Query(f"{seconds} / {ALL_REQUESTS}", phase.name))
    return queries


def latency_budget_timeseries() -> PanelBuilder:
    queries = [
        *budget_queries(),
        *percentiles(
            "version_tenant:sandbox_gateway_request_duration_seconds_bucket:rate1m",
            GATEWAY,
            name="end-to-end",
        ),
    ]
    return timeseries_panel(
        7,
        "Latency budget: seconds per request by phase",
        "Stacked: mean seconds each phase adds to a request (phase time per second / requests per second), so the "
        "stack is the mean end-to-end time. admission, retrieval and postprocess come from the gateway; the engine "
        "phases from vLLM (each version's mean, weighted by the requests it answered, so shadow copies do not count); "
        "network is the gateway's time on the engine call less the engine phases. Dashed: end-to-end p50/p95/p99, "
        "which the mean hides. A band that grows is the phase to open.",
        Unit.SECONDS,
        queries,
        width=24,
        height=9,
        stacked=True,
        unstacked_regexp="^end-to-end.*",
    )


def ttft_timeseries() -> PanelBuilder:
    return timeseries_panel(
        8,
        "Time to first token p50/p95/p99 (gateway)",
        "From arrival at the gateway to the first token relayed: admission, retrieval, network, engine queue and prefill. SLO: p99 < 2 s.",
        Unit.SECONDS,
        [
            *percentiles(TTFT.bucket_rate, TTFT.selector),
            # The raw histogram, for its exemplars: each slow request links to its trace.
            Query(
                "histogram_quantile(0.99, sum by (le) (rate("
                f"sandbox_gateway_time_to_first_token_seconds_bucket{{{GATEWAY}}}[1m])))",
                "p99 (with trace exemplars)",
                exemplar=True,
            ),
        ],
        thresholds=slo_line(TTFT.slo),
    )


def tpot_timeseries() -> PanelBuilder:
    return sli_panel(
        9,
        "Time per output token p50/p95/p99 (engine)",
        "vLLM's mean time between output tokens of each request: decode pace, batch size, preemptions. SLO: p99 < 0.25 s.",
        TPOT,
    )


def outcomes_timeseries() -> PanelBuilder:
    return timeseries_panel(
        10,
        "Request outcomes per second",
        "Answers by status class, and requests the gateway refused before the engine (admission control, input limits) by reason.",
        Unit.REQUESTS_PER_S,
        [
            Query(f"sum by (status_class) ({REQUESTS}{{{GATEWAY}}})", "{{status_class}}"),
            Query(
                "sum by (reason) (reason:sandbox_gateway_rejections:rate1m)", "rejected: {{reason}}"
            ),
        ],
        stacked=True,
    )


def client_vs_server_timeseries() -> PanelBuilder:
    return timeseries_panel(
        11,
        "TTFT p50/p95/p99: client (load generator) vs gateway",
        "The client's TTFT includes the network and the client's own queueing; a gap that grows is time spent before the gateway.",
        Unit.SECONDS,
        [
            *percentiles(
                "tenant:sandbox_loadgen_time_to_first_token_seconds_bucket:rate1m",
                CLIENT,
                name="client",
            ),
            *percentiles(TTFT.bucket_rate, TTFT.selector, name="gateway"),
        ],
        thresholds=slo_line(TTFT.slo),
    )


def e2e_timeseries() -> PanelBuilder:
    return percentile_panel(
        12,
        "End-to-end latency p50/p95/p99 (gateway)",
        "From arrival to the last byte of the answer, every phase included.",
        "version_tenant:sandbox_gateway_request_duration_seconds_bucket:rate1m",
        GATEWAY,
    )


def overview_dashboard() -> Dashboard:
    return dashboard(
        UID,
        "Serving overview: where does the time go",
        "SLOs at a glance and the latency budget split by phase. Start here when paged.",
        [
            *slo_stats(),
            latency_budget_timeseries(),
            ttft_timeseries(),
            tpot_timeseries(),
            outcomes_timeseries(),
            client_vs_server_timeseries(),
            e2e_timeseries(),
        ],
    )
