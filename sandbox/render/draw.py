"""Matplotlib drawings of one panel: a time series (lines, stacks, thresholds, annotations) or
a stat (last value on a threshold colour). Figures are built without pyplot, so no global state
and no display are involved."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import DateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from sandbox.render.model import Annotation, PanelSpec
from sandbox.render.query import DrawnSeries
from sandbox.render.units import format_value, unit_label

__all__ = ["COLUMN_PX", "ROW_PX", "Annotation", "DrawnSeries", "draw_panel"]

matplotlib.rcParams["font.size"] = 8

# The Grafana grid: 24 columns over a 1440 px wide page, rows of 30 px.
COLUMN_PX = 60
ROW_PX = 30
DPI = 100

# Grafana's classic palette, so colours look familiar next to the real thing.
PALETTE = (
    "#7eb26d",
    "#eab839",
    "#6ed0e0",
    "#ef843c",
    "#e24d42",
    "#1f78c1",
    "#ba43a9",
    "#705da0",
    "#508642",
    "#cca300",
    "#447ebc",
    "#c15c17",
    "#890f02",
    "#0a437c",
    "#6d1f62",
    "#584477",
)
NAMED = {
    "green": "#56a64b",
    "red": "#e02f44",
    "orange": "#ff9830",
    "yellow": "#fade2a",
    "purple": "#a352cc",
    "blue": "#3274d9",
    "dark-red": "#ad0317",
}


def colour(name: str) -> str:
    return NAMED.get(name, name)


def _finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if math.isfinite(v)]


def _figure(panel: PanelSpec) -> Figure:
    figure = Figure(figsize=(panel.w * COLUMN_PX / DPI, panel.h * ROW_PX / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _draw_timeseries(
    figure: Figure,
    panel: PanelSpec,
    series: Sequence[DrawnSeries],
    start: float,
    end: float,
    annotations: Sequence[Annotation],
) -> None:
    axes = figure.add_subplot(1, 1, 1)
    axes.set_title(panel.title, loc="left", fontsize=9, fontweight="bold")

    def to_dt(t: float) -> float:  # matplotlib's date number, which its DateFormatter reads
        return float(date2num(datetime.fromtimestamp(t)))

    stack_base: dict[float, float] = {}
    drawn = 0
    for index, s in enumerate(series):
        points = [(t, v) for t, v in zip(s.times, s.values, strict=True) if math.isfinite(v)]
        if not points:
            continue
        drawn += 1
        c = PALETTE[index % len(PALETTE)]
        times = [to_dt(t) for t, _ in points]
        on_stack = panel.stacked and not (panel.unstacked and panel.unstacked.search(s.name))
        if on_stack:
            lower = [stack_base.get(t, 0.0) for t, _ in points]
            upper = [lo + v for lo, (_, v) in zip(lower, points, strict=True)]
            axes.fill_between(times, lower, upper, color=c, alpha=0.45, linewidth=0, step=None)
            axes.plot(times, upper, color=c, linewidth=1, label=s.name)
            for (t, _), u in zip(points, upper, strict=True):
                stack_base[t] = u
        else:
            dashed = panel.stacked  # lines over a stack are the dashed overlays
            axes.plot(
                times,
                [v for _, v in points],
                color=c,
                linewidth=1.2,
                linestyle="--" if dashed else "-",
                label=s.name,
            )
    for value, name in panel.thresholds:
        if value is not None:
            axes.axhline(value, color=colour(name), linestyle=(0, (4, 3)), linewidth=1)
    # Labels close in time go on separate rows, so they never print over each other.
    row_ends: list[float] = []
    min_gap = 0.18 * max(end - start, 1.0) * (24 / max(panel.w, 1))
    for mark in sorted(annotations, key=lambda m: m.time):
        if start <= mark.time <= end:
            axes.axvline(to_dt(mark.time), color=colour(mark.colour), linewidth=1, alpha=0.8)
            row = next((i for i, t in enumerate(row_ends) if mark.time - t >= min_gap), None)
            if row is None:
                row_ends.append(mark.time)
                row = len(row_ends) - 1
            row_ends[row] = mark.time
            if row >= 3:
                continue  # the line stays; its label would not fit
            axes.annotate(
                mark.text if len(mark.text) <= 28 else mark.text[:27] + "…",
                (to_dt(mark.time), 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(2, -10 - 9 * row),
                textcoords="offset points",
                fontsize=7,
                color=colour(mark.colour),
                rotation=0,
            )
    axes.set_xlim(to_dt(start), to_dt(end))
    bottom = 0.0 if panel.min is None else panel.min
    axes.set_ylim(bottom=bottom)
    if panel.max is not None:
        axes.set_ylim(top=panel.max)
    elif drawn == 0:
        axes.set_ylim(top=1.0)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_value(v, panel.unit)))
    axes.xaxis.set_major_formatter(DateFormatter("%H:%M" if end - start > 1200 else "%H:%M:%S"))
    axes.set_ylabel(unit_label(panel.unit), fontsize=7)
    axes.grid(True, color="#dddddd", linewidth=0.5)
    for spine in ("top", "right"):
        axes.spines[spine].set_visible(False)
    if drawn == 0:
        axes.text(
            0.5,
            0.5,
            "No data",
            transform=axes.transAxes,
            ha="center",
            va="center",
            fontsize=12,
            color="#888888",
        )
    elif drawn <= 12:
        axes.legend(
            loc="upper center",
            bbox_to_anchor=(0.5, -0.12),
            ncol=min(drawn, max(1, panel.w // 3)),
            fontsize=6.5,
            frameon=False,
        )


def _stat_colour(panel: PanelSpec, value: float | None) -> str:
    chosen = "green"
    if value is None or not math.isfinite(value):
        return "#888888"
    for threshold, name in panel.thresholds:
        if threshold is None or value >= threshold:
            chosen = name
    return colour(chosen)


def _draw_stat(figure: Figure, panel: PanelSpec, series: Sequence[DrawnSeries]) -> None:
    values = _finite(series[0].values) if series else []
    last = values[-1] if values else None
    background = _stat_colour(panel, last)
    figure.set_facecolor(background)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_axis_off()
    axes.set_facecolor(background)
    if values and len(values) > 1:
        low, high = min(values), max(values)
        span = (high - low) or 1.0
        xs = [i / (len(values) - 1) for i in range(len(values))]
        ys = [0.05 + 0.3 * (v - low) / span for v in values]
        axes.fill_between(xs, 0, ys, color="white", alpha=0.25, linewidth=0)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.text(
        0.04,
        0.86,
        panel.title,
        ha="left",
        va="center",
        fontsize=8,
        color="white",
        fontweight="bold",
    )
    axes.text(
        0.5,
        0.45,
        format_value(last, panel.unit, panel.decimals),
        ha="center",
        va="center",
        fontsize=18,
        color="white",
        fontweight="bold",
    )


def draw_panel(
    panel: PanelSpec,
    series: Sequence[DrawnSeries],
    start: float,
    end: float,
    annotations: Sequence[Annotation],
    path: Path,
    error: str | None = None,
) -> Path:
    """Draw one panel into ``path`` (PNG) at its Grafana grid size."""
    figure = _figure(panel)
    if panel.type == "stat":
        _draw_stat(figure, panel, series)
    else:
        _draw_timeseries(figure, panel, series, start, end, annotations)
        figure.subplots_adjust(
            left=0.09 if panel.w >= 12 else 0.16,
            right=0.98,
            top=0.9,
            bottom=0.3 if panel.h <= 8 else 0.25,
        )
    if error:
        figure.text(
            0.5, 0.05, f"query error: {error[:120]}", ha="center", fontsize=6, color="#c4162a"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, facecolor=figure.get_facecolor())
    return path
