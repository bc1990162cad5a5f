"""Grafana panel queries to named series: the one translation the PNG renderer, the drill's report
and the live console share.

A panel's targets get the dashboard's template variables (their All value) and Grafana's interval
macros, run as Prometheus range queries, and come back as series named by the target's legend.
The dashboard's annotation queries become marks, and the gateway's histograms behind a panel give
the exemplar metrics whose points link to traces.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from urllib.parse import urlencode

from sandbox.durations import duration_s
from sandbox.promapi import PrometheusClient, PrometheusError
from sandbox.render.model import Annotation, DashboardSpec, PanelSpec

__all__ = [
    "MAX_POINTS",
    "DrawnSeries",
    "PanelData",
    "exemplar_metrics",
    "legend",
    "panel_series",
    "prometheus_graph_url",
    "query_annotations",
    "step_for",
    "substitute",
]

MAX_POINTS = 300  # per series: enough for a 1440 px page, cheap for Prometheus


@dataclass(frozen=True)
class DrawnSeries:
    name: str
    times: tuple[float, ...]
    values: tuple[float, ...]

    @property
    def finite(self) -> bool:
        return any(math.isfinite(v) for v in self.values)


@dataclass(frozen=True)
class PanelData:
    """What one panel shows over a window: its series (in a stable order) and failed queries."""

    panel: PanelSpec
    series: tuple[DrawnSeries, ...]
    errors: tuple[str, ...]

    @property
    def drawn(self) -> int:
        """Series with at least one finite value: what a reader sees as lines."""
        return sum(1 for s in self.series if s.finite)


def substitute(expr: str, variables: dict[str, str], step_s: float, range_s: float) -> str:
    """Replace ``$var``/``${var}`` with the variable's All value and Grafana's interval macros."""
    macros = {
        "__rate_interval": f"{max(int(4 * step_s), 60)}s",
        "__interval": f"{max(int(step_s), 1)}s",
        "__range": f"{max(int(range_s), 1)}s",
    }
    values = {**variables, **macros}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return values.get(name, match.group(0))

    names = "|".join(sorted(map(re.escape, values), key=len, reverse=True))
    return re.sub(rf"\$\{{({names})\}}|\$({names})\b", replace, expr)


def legend(template: str, labels: dict[str, str]) -> str:
    """Grafana's ``{{label}}`` legend; without a template, the label set."""
    if not template:
        shown = {k: v for k, v in labels.items() if k != "__name__"}
        return (
            "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(shown.items())) + "}"
            if shown
            else "value"
        )
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template).strip()


def step_for(start: float, end: float) -> float:
    """A whole number of seconds, at least the 2 s scrape interval, at most MAX_POINTS points."""
    return float(max(2, math.ceil((end - start) / MAX_POINTS)))


def _step_s(text: str) -> float:
    """An annotation query's step; 15 s (Grafana's usual) when it is not a duration."""
    try:
        return duration_s(text)
    except ValueError:
        return 15.0


def panel_series(
    prom: PrometheusClient,
    spec: DashboardSpec,
    panel: PanelSpec,
    start: float,
    end: float,
    step: float,
) -> PanelData:
    """Every target of ``panel`` as series over [start, end]; a failing query is recorded, not raised."""
    drawn: list[DrawnSeries] = []
    errors: list[str] = []
    for target in panel.targets:
        expr = substitute(target.expr, spec.variables, step, end - start)
        try:
            found = prom.range(expr, start, end, step)
        except PrometheusError as exc:
            errors.append(str(exc))
            continue
        for series in sorted(found, key=lambda s: sorted(s.labels.items())):
            drawn.append(
                DrawnSeries(legend(target.legend, dict(series.labels)), series.times, series.values)
            )
    return PanelData(panel, tuple(drawn), tuple(errors))


def query_annotations(
    prom: PrometheusClient, spec: DashboardSpec, start: float, end: float
) -> list[Annotation]:
    """Each run of points of an annotation query becomes one mark at the run's start."""
    marks = []
    for query in spec.annotations:
        step = _step_s(query.step)
        expr = substitute(query.expr, spec.variables, step, end - start)
        try:
            found = prom.range(expr, start, end, step)
        except PrometheusError:
            continue  # an annotation source that fails must not stop the panels
        for series in found:
            previous = None
            for t, v in zip(series.times, series.values, strict=True):
                if math.isfinite(v) and v != 0 and (previous is None or t - previous > 1.5 * step):
                    text = legend(query.title_format, dict(series.labels)) or query.name
                    marks.append(Annotation(t, f"{query.name}: {text}", query.colour))
                previous = t if math.isfinite(v) and v != 0 else previous
    return marks


# A recorded gateway histogram (``version_tenant:sandbox_gateway_x_seconds_bucket:rate1m``) or the
# raw one: exemplars live only on the raw series the gateway exposes.
_GATEWAY_BUCKET = re.compile(
    r"(?:\w+:)?(sandbox_gateway_\w+_seconds)_bucket\b(?::\w+)?\s*(\{[^}]*\})?"
)
_EQUALS = re.compile(r'(\w+)\s*=\s*"([^"]*)"')  # `phase="retrieval"`; not =~ or !=


def exemplar_metrics(panel: PanelSpec) -> tuple[str, ...]:
    """Selectors of the gateway histograms behind a panel (raw ``_bucket`` series, which alone
    carry exemplars), keeping the panel's exact label matchers: ``x_bucket{phase="retrieval"}``."""
    found: list[str] = []
    for target in panel.targets:
        for match in _GATEWAY_BUCKET.finditer(target.expr):
            matchers = ",".join(f'{k}="{v}"' for k, v in _EQUALS.findall(match.group(2) or ""))
            name = f"{match.group(1)}_bucket" + (f"{{{matchers}}}" if matchers else "")
            if name not in found:
                found.append(name)
    return tuple(found)


def prometheus_graph_url(
    prometheus_url: str, expr: str, range_s: float, end: float | None = None
) -> str:
    """The expression in Prometheus' own graph page, over the same range."""
    params = {
        "g0.expr": expr,
        "g0.tab": "0",
        "g0.range_input": f"{max(int(range_s), 60)}s",
    }
    if end is not None:
        from datetime import UTC, datetime

        params["g0.end_input"] = datetime.fromtimestamp(end, UTC).strftime("%Y-%m-%d %H:%M:%S")
        params["g0.moment_input"] = params["g0.end_input"]
    return f"{prometheus_url.rstrip('/')}/graph?{urlencode(params)}"
