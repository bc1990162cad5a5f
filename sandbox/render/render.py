"""Render a dashboard from live Prometheus data: one PNG per panel and one HTML page."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sandbox.promapi import PrometheusClient, PrometheusError
from sandbox.render.draw import Annotation, DrawnSeries, draw_panel
from sandbox.render.model import DashboardSpec, PanelSpec, load_dashboard
from sandbox.render.page import write_composite, write_page
from sandbox.render.query import legend, substitute

__all__ = ["RenderResult", "RenderedPanel", "render_dashboard", "step_for"]

MAX_POINTS = 300  # per series: enough for a 1440 px page, cheap for Prometheus


@dataclass(frozen=True)
class RenderedPanel:
    panel_id: int
    title: str
    image: Path
    series: int  # series drawn with at least one finite value
    errors: tuple[str, ...]


class RenderResult(tuple):  # type: ignore[type-arg]
    """The PNG paths, one per panel in grid order (so callers that want images just iterate),
    plus ``html`` (the page), ``composite`` (the whole dashboard in one PNG), ``panels`` (what
    each image shows) and ``name``."""

    html: Path
    composite: Path
    panels: tuple[RenderedPanel, ...]
    name: str

    def __new__(
        cls, name: str, html: Path, composite: Path, panels: Sequence[RenderedPanel]
    ) -> RenderResult:
        result = super().__new__(cls, tuple(p.image for p in panels))
        result.name, result.html, result.composite, result.panels = (
            name,
            html,
            composite,
            tuple(panels),
        )
        return result

    @property
    def images(self) -> tuple[Path, ...]:
        return tuple(self)


def _seconds(value: float | datetime | None, default: float) -> float:
    if value is None:
        return default
    return value.timestamp() if isinstance(value, datetime) else float(value)


def step_for(start: float, end: float) -> float:
    """A whole number of seconds, at least the 2 s scrape interval, at most MAX_POINTS points."""
    return float(max(2, math.ceil((end - start) / MAX_POINTS)))


def _duration_s(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text.strip())
    if not match:
        return 15.0
    return float(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def _caller_annotations(
    items: Iterable[Annotation | Mapping[str, Any] | tuple[float, str]],
) -> list[Annotation]:
    marks = []
    for item in items:
        if isinstance(item, Annotation):
            marks.append(item)
        elif isinstance(item, Mapping):
            marks.append(
                Annotation(
                    _seconds(item["time"], 0.0),
                    str(item.get("text", "")),
                    str(item.get("colour", "purple")),
                )
            )
        else:
            marks.append(Annotation(_seconds(item[0], 0.0), str(item[1])))
    return marks


def _query_annotations(
    prom: PrometheusClient, spec: DashboardSpec, start: float, end: float
) -> list[Annotation]:
    """Each run of points of an annotation query becomes one mark at the run's start."""
    marks = []
    for query in spec.annotations:
        step = _duration_s(query.step)
        expr = substitute(query.expr, spec.variables, step, end - start)
        try:
            found = prom.range(expr, start, end, step)
        except PrometheusError:
            continue  # an annotation source that fails must not stop the panels
        for series in found:
            previous = None
            for t, v in zip(series.times, series.values):
                if math.isfinite(v) and v != 0 and (previous is None or t - previous > 1.5 * step):
                    marks.append(
                        Annotation(
                            t, legend(query.title_format, series.labels) or query.name, query.colour
                        )
                    )
                previous = t if math.isfinite(v) and v != 0 else previous
    return marks


def _panel_series(
    prom: PrometheusClient,
    spec: DashboardSpec,
    panel: PanelSpec,
    start: float,
    end: float,
    step: float,
) -> tuple[list[DrawnSeries], list[str]]:
    drawn, errors = [], []
    for target in panel.targets:
        expr = substitute(target.expr, spec.variables, step, end - start)
        try:
            found = prom.range(expr, start, end, step)
        except PrometheusError as exc:
            errors.append(str(exc))
            continue
        for series in sorted(found, key=lambda s: sorted(s.labels.items())):
            drawn.append(
                DrawnSeries(legend(target.legend, series.labels), series.times, series.values)
            )
    return drawn, errors


def render_dashboard(
    dashboard: str | Path | dict[str, Any],
    prometheus_url: str,
    start: float | datetime,
    end: float | datetime | None = None,
    out_dir: Path | str = Path("."),
    annotations: Iterable[Annotation | Mapping[str, Any] | tuple[float, str]] = (),
    timeout_s: float = 15.0,
) -> RenderResult:
    """Query every panel of ``dashboard`` (a name like ``overview``, a JSON path, or parsed JSON)
    over [start, end] and write ``<out_dir>/<name>/panel-<id>.png``, ``<out_dir>/<name>.html`` and
    the whole dashboard as ``<out_dir>/<name>.png``.

    ``annotations`` (``{"time": unix_s, "text": ...}``) are drawn with the dashboard's own
    annotation queries. A failing query is written on its panel, not raised.
    """
    import time as _time

    name, spec = load_dashboard(dashboard)
    end_s = _seconds(end, _time.time())
    start_s = _seconds(start, end_s - 900)
    if end_s - start_s < 60:  # too short a window draws nothing useful: widen to one minute
        start_s = end_s - 60
    step = step_for(start_s, end_s)
    out = Path(out_dir)
    rendered: list[RenderedPanel] = []
    images: list[tuple[PanelSpec, Path]] = []
    with PrometheusClient(prometheus_url, timeout_s=timeout_s) as prom:
        marks = [
            *_caller_annotations(annotations),
            *_query_annotations(prom, spec, start_s, end_s),
        ]
        for panel in spec.panels:
            series, errors = _panel_series(prom, spec, panel, start_s, end_s, step)
            path = draw_panel(
                panel,
                series,
                start_s,
                end_s,
                marks,
                out / name / f"panel-{panel.id:02d}.png",
                error="; ".join(errors) or None,
            )
            images.append((panel, path))
            rendered.append(
                RenderedPanel(
                    panel.id,
                    panel.title,
                    path,
                    sum(1 for s in series if any(math.isfinite(v) for v in s.values)),
                    tuple(errors),
                )
            )
    page = write_page(out / f"{name}.html", name, spec, images, start_s, end_s, marks)
    composite = write_composite(out / f"{name}.png", images)
    return RenderResult(name, page, composite, rendered)
