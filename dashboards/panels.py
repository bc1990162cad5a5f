"""Shared defaults and small panel builders for every dashboard.

Queries read the recording rules of ``stack/prometheus/rules/recording.yml`` wherever one exists,
filtered by the template variables, so a panel and an alert read the same SLI. Latency panels
always show p50, p95 and p99 (``percentiles``): an average hides the tail that pages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias, TypeVar

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.variants import Dataquery
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from sandbox.slos import load_slos

__all__ = [
    "CLIENT",
    "DATASOURCE",
    "ENGINE",
    "ERROR_BUDGET",
    "GATEWAY",
    "PERCENTILES",
    "REQUESTS",
    "TPOT",
    "TPOT_BUCKETS",
    "TPOT_SLO_S",
    "TTFT",
    "TTFT_BUCKETS",
    "TTFT_SLO_S",
    "VERSION",
    "PanelBuilder",
    "Query",
    "Sli",
    "Unit",
    "dashboard",
    "drill_annotations",
    "percentile_panel",
    "percentiles",
    "quantile",
    "rate_by",
    "sli_panel",
    "sli_stat",
    "slo_line",
    "stat_panel",
    "timeseries_panel",
    "variables",
]

# What every panel function returns: a time series, stat, ... builder of a dashboard panel.
PanelBuilder: TypeAlias = Builder[model.Panel]

DATASOURCE = common.DataSourceRef(type_val="prometheus", uid="prometheus")

# Label selectors of the template variables, one constant per source of series.
GATEWAY = 'version=~"$version", tenant=~"$tenant"'
ENGINE = 'version=~"$version", replica=~"$engine"'
CLIENT = 'tenant=~"$tenant"'
# The gateway's per-version series without a tenant (route weights, engines, upstream, shadow).
VERSION = 'version=~"$version"'

# Recorded series (stack/prometheus/rules/recording.yml) that more than one dashboard reads.
REQUESTS = "version_status_class_tenant:sandbox_gateway_requests:rate1m"
TTFT_BUCKETS = "version_tenant:sandbox_gateway_time_to_first_token_seconds_bucket:rate1m"
TPOT_BUCKETS = "version_replica:vllm_request_time_per_output_token_seconds_bucket:rate1m"

PERCENTILES: tuple[tuple[float, str], ...] = ((0.5, "p50"), (0.95, "p95"), (0.99, "p99"))

# SLOs drawn as threshold lines, from stack/slos.yaml (as the SLO alerts are).
TTFT_SLO_S = load_slos().ttft_s
TPOT_SLO_S = load_slos().tpot_s
ERROR_BUDGET = load_slos().error_ratio


@dataclass(frozen=True)
class Sli:
    """A latency SLI as the panels read it: its recorded bucket rate, the selector of the template
    variables that fits that series' labels, and the SLO drawn over it. Kept together so no
    panel filters the gateway's TTFT by the engine's labels or draws the wrong limit."""

    name: str
    bucket_rate: str
    selector: str
    slo: float


TTFT = Sli("TTFT", TTFT_BUCKETS, GATEWAY, TTFT_SLO_S)
TPOT = Sli("TPOT", TPOT_BUCKETS, ENGINE, TPOT_SLO_S)


class Unit:
    """Grafana unit ids used here (the renderer knows each of them)."""

    SECONDS = "s"
    RATIO = "percentunit"
    REQUESTS_PER_S = "reqps"
    EVENTS_PER_S = "suffix: /s"
    TOKENS_PER_S = "suffix: tok/s"
    TOKENS = "suffix: tok"
    COUNT = "short"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str
    # Ask Prometheus for the series' exemplars (trace ids): Grafana draws them as points that
    # open the trace in Tempo. Only raw histograms carry them, never recorded rates.
    exemplar: bool = False


def quantile(q: float, bucket_rate: str, selector: str = "", by: Sequence[str] = ()) -> str:
    """The ``q`` quantile of a recorded bucket rate, optionally split by labels ``by``."""
    keep = ", ".join(("le", *by))
    return f"histogram_quantile({q}, sum by ({keep}) ({bucket_rate}{{{selector}}}))"


def _legend(by: Sequence[str]) -> str:
    """The legend of a series split by the labels ``by``: their values, in order."""
    return " ".join("{{" + label + "}}" for label in by)


def rate_by(counter: str, by: Sequence[str], selector: str = "") -> Query:
    """Per-second rate of a raw counter over the last minute, one series per value of ``by``."""
    return Query(f"sum by ({', '.join(by)}) (rate({counter}{{{selector}}}[1m]))", _legend(by))


def percentiles(
    bucket_rate: str, selector: str = "", by: Sequence[str] = (), name: str = ""
) -> list[Query]:
    """p50/p95/p99 of a recorded bucket rate, optionally split by labels ``by``."""
    split = _legend(by)
    prefix = f"{name} " if name else ""
    return [
        Query(
            quantile(q, bucket_rate, selector, by),
            f"{prefix}{label}{(' ' + split) if split else ''}",
        )
        for q, label in PERCENTILES
    ]


def _targets(queries: Sequence[Query]) -> list[Builder[Dataquery]]:
    targets: list[Builder[Dataquery]] = []
    for i, q in enumerate(queries):
        target = (
            prometheus.Dataquery()
            .expr(q.expr)
            .legend_format(q.legend)
            .ref_id(chr(ord("A") + i))
            .datasource(DATASOURCE)
        )
        targets.append(target.exemplar(True) if q.exemplar else target)
    return targets


def _thresholds(steps: Sequence[tuple[float | None, str]]) -> dash.ThresholdsConfig:
    return (
        dash.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=value, color=colour) for value, colour in steps])
    )


_Panel = TypeVar("_Panel", timeseries.Panel, stat.Panel)


def _panel(
    panel: _Panel, panel_id: int, title: str, description: str, unit: str, width: int, height: int
) -> _Panel:
    """What every panel sets, whatever its type: id, texts, the data source, unit and size."""
    return (
        panel.id(panel_id)
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(height)
    )


def slo_line(limit: float) -> list[tuple[float | None, str]]:
    """Green below the limit, red from it (a threshold line on a time series)."""
    return [(None, "green"), (limit, "red")]


def timeseries_panel(
    panel_id: int,
    title: str,
    description: str,
    unit: str,
    queries: Sequence[Query],
    *,
    width: int = 12,
    height: int = 8,
    thresholds: Sequence[tuple[float | None, str]] | None = None,
    stacked: bool = False,
    unstacked_regexp: str | None = None,
    max_value: float | None = None,
) -> timeseries.Panel:
    panel = (
        _panel(timeseries.Panel(), panel_id, title, description, unit, width, height)
        .min(0)
        .line_width(1)
        .fill_opacity(25 if stacked else 0)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(
            common_builders.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
        .targets(_targets(queries))
    )
    if max_value is not None:
        panel = panel.max(max_value)
    if thresholds:
        panel = panel.thresholds(_thresholds(thresholds)).thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(
                common.GraphThresholdsStyleMode.DASHED
            )
        )
    if stacked:
        panel = panel.stacking(
            common_builders.StackingConfig().mode(common.StackingMode.NORMAL).group("A")
        )
    if unstacked_regexp:
        # Lines drawn over a stack (e.g. percentiles over a stacked budget) must not be stacked.
        panel = panel.override_by_regexp(
            unstacked_regexp,
            [
                model.DynamicConfigValue(
                    id_val="custom.stacking", value={"mode": "none", "group": "A"}
                ),
                model.DynamicConfigValue(id_val="custom.fillOpacity", value=0),
                model.DynamicConfigValue(
                    id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}
                ),
            ],
        )
    return panel


def percentile_panel(
    panel_id: int,
    title: str,
    description: str,
    bucket_rate: str,
    selector: str = "",
    *,
    by: Sequence[str] = (),
    unit: str = Unit.SECONDS,
    slo: float | None = None,
    width: int = 12,
) -> timeseries.Panel:
    """A time series of p50/p95/p99 of one recorded bucket rate (``percentiles``), split by the
    labels ``by``; ``slo`` draws the limit as a threshold line (``slo_line``)."""
    return timeseries_panel(
        panel_id,
        title,
        description,
        unit,
        percentiles(bucket_rate, selector, by),
        width=width,
        thresholds=slo_line(slo) if slo is not None else None,
    )


def sli_panel(
    panel_id: int, title: str, description: str, sli: Sli, *, by: Sequence[str] = ()
) -> timeseries.Panel:
    """p50/p95/p99 of an SLI with its SLO line, split by the labels ``by``."""
    return percentile_panel(
        panel_id, title, description, sli.bucket_rate, sli.selector, by=by, slo=sli.slo
    )


def stat_panel(
    panel_id: int,
    title: str,
    description: str,
    unit: str,
    query: Query,
    *,
    thresholds: Sequence[tuple[float | None, str]] = ((None, "green"),),
    width: int = 4,
    height: int = 4,
    decimals: int | None = None,
) -> stat.Panel:
    panel = (
        _panel(stat.Panel(), panel_id, title, description, unit, width, height)
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.AREA)
        .thresholds(_thresholds(thresholds))
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
        .targets(_targets([query]))
    )
    return panel.decimals(decimals) if decimals is not None else panel


def sli_stat(panel_id: int, title: str, description: str, sli: Sli, q: float) -> stat.Panel:
    """One percentile ``q`` (one of ``PERCENTILES``) of an SLI as a stat, red from its SLO."""
    legend = f"{sli.name} {dict(PERCENTILES)[q]}"
    return stat_panel(
        panel_id,
        title,
        description,
        Unit.SECONDS,
        Query(quantile(q, sli.bucket_rate, sli.selector), legend),
        thresholds=slo_line(sli.slo),
    )


def variables() -> list[Builder[model.VariableModel]]:
    """version, engine (vLLM replica) and tenant; each multi-valued with All = every value."""

    def variable(name: str, label: str, query: str, description: str) -> dash.QueryVariable:
        return (
            dash.QueryVariable(name)
            .label(label)
            .description(description)
            .datasource(DATASOURCE)
            .query(query)
            .definition(query)
            .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(model.VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
            .current(model.VariableOption(selected=True, text="All", value="$__all"))
        )

    return [
        variable(
            "version",
            "Model version",
            "label_values(sandbox_gateway_requests_total, version)",
            "Model version the gateway routed to (stable, canary, shadow).",
        ),
        variable(
            "engine",
            "Engine replica",
            "label_values(vllm:num_requests_running, replica)",
            "vLLM replica (the `replica` label of the engine targets).",
        ),
        variable(
            "tenant",
            "Tenant",
            "label_values(sandbox_gateway_requests_total, tenant)",
            "Tenant from the X-Sandbox-Tenant header (unknown tenants are `other`).",
        ),
    ]


def drill_annotations() -> list[Builder[model.AnnotationQuery]]:
    """Drill events and pages on every time series panel.

    ``sandbox_drill_events_total{kind}`` is the drill's counter of timeline events (fault
    injected, page, mitigation, recovered); ``ALERTS`` is Prometheus' own series of alerts.
    """
    return [
        dash.AnnotationQuery()
        .name("Drill events")
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color("purple")
        .expr("sum by (kind) (increase(sandbox_drill_events_total[30s])) > 0")
        .step("15s")
        .title_format("{{kind}}")
        .text_format("drill: {{kind}}")
        .tag_keys("kind"),
        dash.AnnotationQuery()
        .name("Pages")
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color("red")
        .expr('max by (alertname) (ALERTS{alertstate="firing", severity="page"})')
        .step("15s")
        .title_format("{{alertname}}")
        .text_format("page: {{alertname}}")
        .tag_keys("alertname"),
    ]


def dashboard(
    uid: str, title: str, description: str, panels: Sequence[PanelBuilder]
) -> dash.Dashboard:
    """A dashboard with the shared time range, variables, annotations and tags."""
    board = (
        dash.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["llm-serving", "sandbox"])
        .editable()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .time("now-30m", "now")
        .refresh("10s")
        .timezone("browser")
        .variables(variables())
        .annotations(drill_annotations())
    )
    for panel in panels:
        board = board.with_panel(panel)
    return board
