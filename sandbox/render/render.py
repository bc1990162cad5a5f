"""Render a dashboard from live Prometheus data: one PNG per panel and one HTML page."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sandbox.promapi import PrometheusClient
from sandbox.render.draw import draw_panel
from sandbox.render.model import Annotation, PanelSpec, load_dashboard
from sandbox.render.page import write_composite, write_page
from sandbox.render.query import panel_series, query_annotations, step_for

__all__ = ["RenderResult", "RenderedPanel", "render_dashboard", "step_for"]


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
            *query_annotations(prom, spec, start_s, end_s),
        ]
        for panel in spec.panels:
            data = panel_series(prom, spec, panel, start_s, end_s, step)
            path = draw_panel(
                panel,
                data.series,
                start_s,
                end_s,
                marks,
                out / name / f"panel-{panel.id:02d}.png",
                error="; ".join(data.errors) or None,
            )
            images.append((panel, path))
            rendered.append(RenderedPanel(panel.id, panel.title, path, data.drawn, data.errors))
    page = write_page(out / f"{name}.html", name, spec, images, start_s, end_s, marks)
    composite = write_composite(out / f"{name}.png", images)
    return RenderResult(name, page, composite, rendered)
