"""A dashboard for the browser: its layout (from the checked-in Grafana JSON) and its data over a
time range (from Prometheus, through the same translation the PNG renderer uses).

Series are aligned on one time grid, so the browser draws them without re-sampling: ``times``
once per answer and, per series, ``values`` with ``null`` where Prometheus had no point.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.durations import relative_to_now
from sandbox.promapi import PrometheusClient, PrometheusError
from sandbox.render.model import (
    DASHBOARD_DIR,
    DashboardSpec,
    PanelSpec,
    dashboard_names,
    load_dashboard,
)
from sandbox.render.query import (
    PanelData,
    exemplar_metrics,
    panel_series,
    prometheus_graph_url,
    query_annotations,
    step_for,
    substitute,
)

__all__ = [
    "MAX_EXEMPLARS",
    "Catalog",
    "TimeRange",
    "dashboard_data",
    "dashboard_layout",
    "parse_range",
]

MAX_EXEMPLARS = 60  # per panel: the slowest requests, which are the ones worth opening


class Catalog:
    """The checked-in dashboards, found by uid (``sandbox-overview``) or file name (``overview``)."""

    def __init__(self, directory: Path = DASHBOARD_DIR) -> None:
        self._by_key: dict[str, tuple[str, DashboardSpec]] = {}
        for name in dashboard_names(directory):
            _, spec = load_dashboard(name, directory)
            self._by_key[name] = (name, spec)
            if spec.uid:
                self._by_key[spec.uid] = (name, spec)

    def get(self, key: str) -> tuple[str, DashboardSpec] | None:
        return self._by_key.get(key)

    def all(self) -> list[tuple[str, DashboardSpec]]:
        seen: dict[str, tuple[str, DashboardSpec]] = {}
        for name, spec in self._by_key.values():
            seen.setdefault(name, (name, spec))
        return sorted(seen.values(), key=lambda item: item[0])


@dataclass(frozen=True)
class TimeRange:
    start: float
    end: float
    live: bool  # the end follows "now": the browser refreshes it


def _point(text: str, now: float) -> float:
    """Grafana's forms: ``now``, ``now-15m``, or milliseconds since the epoch."""
    relative = relative_to_now(text, now)
    if relative is not None:
        return relative
    value = float(text)  # ValueError for anything else: the caller answers 400
    return value / 1000 if value > 1e11 else value


def parse_range(start: str | None, end: str | None, now: float | None = None) -> TimeRange:
    """A time range from Grafana-style ``from``/``to``; 15 minutes up to now by default."""
    now = time.time() if now is None else now
    to_text = end or "now"
    begin = _point(start or "now-15m", now)
    finish = _point(to_text, now)
    if finish - begin < 60:
        begin = finish - 60
    return TimeRange(begin, finish, to_text.strip().startswith("now"))


def _panel_layout(
    spec: DashboardSpec, panel: PanelSpec, prometheus_url: str, range_s: float
) -> dict[str, Any]:
    step = step_for(0, range_s)
    return {
        "id": panel.id,
        "type": panel.type,
        "title": panel.title,
        "description": panel.description,
        "unit": panel.unit,
        "decimals": panel.decimals,
        "min": panel.min,
        "max": panel.max,
        "grid": {"x": panel.x, "y": panel.y, "w": panel.w, "h": panel.h},
        "thresholds": [{"value": v, "colour": c} for v, c in panel.thresholds],
        "threshold_style": panel.threshold_style,
        "stacked": panel.stacked,
        "unstacked": panel.unstacked.pattern if panel.unstacked else None,
        "fill_opacity": panel.fill_opacity,
        "legend": panel.show_legend,
        "exemplars": bool(exemplar_metrics(panel)),
        "queries": [
            {
                "ref_id": t.ref_id,
                "expr": substitute(t.expr, spec.variables, step, range_s),
                "legend": t.legend,
                "prometheus": prometheus_graph_url(
                    prometheus_url, substitute(t.expr, spec.variables, step, range_s), range_s
                ),
            }
            for t in panel.targets
        ],
    }


def dashboard_layout(
    name: str, spec: DashboardSpec, prometheus_url: str, range_s: float = 900
) -> dict[str, Any]:
    """What the browser needs to lay the dashboard out before any data arrives."""
    return {
        "name": name,
        "uid": spec.uid,
        "title": spec.title,
        "description": spec.description,
        "panels": [_panel_layout(spec, p, prometheus_url, range_s) for p in spec.panels],
    }


def _aligned(data: PanelData, grid: Sequence[float]) -> list[dict[str, Any]]:
    index = {round(t, 3): i for i, t in enumerate(grid)}
    out = []
    for series in data.series:
        values: list[float | None] = [None] * len(grid)
        for t, v in zip(series.times, series.values, strict=True):
            i = index.get(round(t, 3))
            if i is not None and math.isfinite(v):
                values[i] = v
        out.append({"name": series.name, "values": values})
    return out


def _exemplars(
    prom: PrometheusClient, metric: str, start: float, end: float
) -> list[dict[str, Any]]:
    try:
        found = prom.exemplars(metric, start, end)
    except PrometheusError:
        return []
    points = [
        {
            "time": e.time,
            "value": e.value,
            "trace_id": e.labels.get("trace_id", ""),
            "series": ", ".join(
                f"{k}={v}" for k, v in sorted(e.series_labels.items()) if k not in ("__name__",)
            ),
        }
        for e in found
        if e.labels.get("trace_id") and math.isfinite(e.value)
    ]
    return points


def dashboard_data(
    prom: PrometheusClient, spec: DashboardSpec, span: TimeRange, workers: int = 4
) -> dict[str, Any]:
    """Every panel's series, the dashboard's annotation marks and the gateway's exemplars."""
    problem = prom.ready()
    step = step_for(span.start, span.end)
    # Prometheus evaluates at start, start+step, ...: the same grid for every panel.
    first = math.floor(span.start / step) * step
    grid = [first + i * step for i in range(int((span.end - first) // step) + 1)]
    answer: dict[str, Any] = {
        "start": span.start,
        "end": span.end,
        "step": step,
        "live": span.live,
        "times": grid,
        "prometheus_error": problem,
        "panels": [],
        "annotations": [],
    }
    if problem:
        return answer  # the browser shows a banner; running every query would only time out
    start, end = grid[0], grid[-1]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        panel_jobs = [
            pool.submit(panel_series, prom, spec, p, start, end, step) for p in spec.panels
        ]
        marks_job = pool.submit(query_annotations, prom, spec, span.start, span.end)
        metrics = sorted({m for p in spec.panels if p.unit == "s" for m in exemplar_metrics(p)})
        exemplar_jobs = {m: pool.submit(_exemplars, prom, m, span.start, span.end) for m in metrics}
        by_metric = {m: job.result() for m, job in exemplar_jobs.items()}
        for panel, job in zip(spec.panels, panel_jobs, strict=True):
            data = job.result()
            points = [
                e
                for m in exemplar_metrics(panel)
                if panel.unit == "s"
                for e in by_metric.get(m, [])
            ]
            points.sort(key=lambda e: e["value"], reverse=True)
            answer["panels"].append(
                {
                    "id": panel.id,
                    "series": _aligned(data, grid),
                    "errors": list(data.errors),
                    "exemplars": points[:MAX_EXEMPLARS],
                }
            )
        answer["annotations"] = [
            {"time": a.time, "text": a.text, "colour": a.colour} for a in marks_job.result()
        ]
    return answer
