"""The parts of a Grafana dashboard JSON the renderer draws: panels, their queries, units,
thresholds, stacking and grid positions, and the dashboard's Prometheus annotation queries."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.settings import REPO_ROOT

__all__ = [
    "DASHBOARD_DIR",
    "Annotation",
    "AnnotationQuery",
    "DashboardSpec",
    "PanelSpec",
    "Target",
    "dashboard_names",
    "load_dashboard",
]

DASHBOARD_DIR = REPO_ROOT / "dashboards"


@dataclass(frozen=True)
class Target:
    ref_id: str
    expr: str
    legend: str


@dataclass(frozen=True)
class PanelSpec:
    id: int
    type: str  # "timeseries" or "stat"
    title: str
    description: str
    unit: str
    x: int
    y: int
    w: int
    h: int
    targets: tuple[Target, ...]
    thresholds: tuple[tuple[float | None, str], ...] = ()
    stacked: bool = False
    unstacked: re.Pattern[str] | None = None  # series drawn as dashed lines over the stack
    min: float | None = None
    max: float | None = None
    decimals: int | None = None
    threshold_style: str = "off"  # timeseries: "dashed", "line", ... draw the thresholds
    fill_opacity: int = 0  # percent
    show_legend: bool = True


@dataclass(frozen=True)
class Annotation:
    """A mark on the time axis: a drill event, a page, a caller's note."""

    time: float
    text: str
    colour: str = "purple"


@dataclass(frozen=True)
class AnnotationQuery:
    name: str
    expr: str
    step: str
    title_format: str
    colour: str


@dataclass(frozen=True)
class DashboardSpec:
    uid: str
    title: str
    description: str
    panels: tuple[PanelSpec, ...]
    annotations: tuple[AnnotationQuery, ...] = ()
    variables: dict[str, str] = field(default_factory=dict)  # name -> value used for "All"


def _panel(raw: dict[str, Any]) -> PanelSpec:
    config = raw.get("fieldConfig", {})
    defaults = config.get("defaults", {})
    custom = defaults.get("custom", {})
    steps = defaults.get("thresholds", {}).get("steps", [])
    unstacked = None
    for override in config.get("overrides", []):
        matcher = override.get("matcher", {})
        if matcher.get("id") == "byRegexp" and any(
            p.get("id") == "custom.stacking" and p.get("value", {}).get("mode") == "none"
            for p in override.get("properties", [])
        ):
            unstacked = re.compile(matcher["options"])
    grid = raw.get("gridPos", {})
    return PanelSpec(
        id=int(raw["id"]),
        type=raw.get("type", "timeseries"),
        title=raw.get("title", ""),
        description=raw.get("description", ""),
        unit=defaults.get("unit", ""),
        x=int(grid.get("x", 0)),
        y=int(grid.get("y", 0)),
        w=int(grid.get("w", 12)),
        h=int(grid.get("h", 8)),
        targets=tuple(
            Target(t.get("refId", ""), t["expr"], t.get("legendFormat", ""))
            for t in raw.get("targets", [])
        ),
        thresholds=tuple((s.get("value"), s.get("color", "red")) for s in steps),
        stacked=custom.get("stacking", {}).get("mode", "none") == "normal",
        unstacked=unstacked,
        min=defaults.get("min"),
        max=defaults.get("max"),
        decimals=defaults.get("decimals"),
        threshold_style=str(custom.get("thresholdsStyle", {}).get("mode", "off")),
        fill_opacity=int(custom.get("fillOpacity", 0) or 0),
        show_legend=bool(raw.get("options", {}).get("legend", {}).get("showLegend", True)),
    )


def parse_dashboard(raw: dict[str, Any]) -> DashboardSpec:
    panels: list[PanelSpec] = []
    for item in raw.get("panels", []):
        if item.get("type") == "row":  # rows only group; their collapsed children are drawn too
            panels.extend(_panel(child) for child in item.get("panels", []))
        elif item.get("targets"):
            panels.append(_panel(item))
    annotations = tuple(
        AnnotationQuery(
            a.get("name", ""),
            a["expr"],
            a.get("step", "15s"),
            a.get("titleFormat", a.get("name", "")),
            a.get("iconColor", "purple"),
        )
        for a in raw.get("annotations", {}).get("list", [])
        if a.get("expr") and a.get("enable", True)
    )
    variables = {
        v["name"]: v.get("allValue") or ".*" for v in raw.get("templating", {}).get("list", [])
    }
    return DashboardSpec(
        raw.get("uid", ""),
        raw.get("title", ""),
        raw.get("description", ""),
        tuple(sorted(panels, key=lambda p: (p.y, p.x))),
        annotations,
        variables,
    )


def dashboard_names(directory: Path = DASHBOARD_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.json"))


def load_dashboard(
    dashboard: str | Path | dict[str, Any], directory: Path = DASHBOARD_DIR
) -> tuple[str, DashboardSpec]:
    """A dashboard by name (``overview``), by path, or as parsed JSON; returns (name, spec)."""
    if isinstance(dashboard, dict):
        spec = parse_dashboard(dashboard)
        return spec.uid or "dashboard", spec
    path = Path(dashboard)
    if path.suffix != ".json":
        path = directory / f"{dashboard}.json"
    if not path.exists():
        known = ", ".join(dashboard_names(directory)) or "none"
        raise FileNotFoundError(
            f"no dashboard {dashboard!r} (known: {known}; `make dashboards` writes them)"
        )
    return path.stem, parse_dashboard(json.loads(path.read_text()))
