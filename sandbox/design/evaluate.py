"""Run a dashboard's queries over one incident's window and find what its panels show.

A series shows the fault when, after the injection, it leaves the band its own baseline (the
recording before the injection) stayed in, and stays out for a while: at least
``SUSTAIN_S`` seconds and two query steps. The band is the baseline's median plus or minus
the larger of 1.5 times its widest excursion and 20% of the median, so a noisy baseline needs a
bigger change. A series that did not exist in the baseline shows the fault when it appears
with a non-zero value (a new error class, a new version).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from sandbox.design.areas import area_of
from sandbox.design.load import LoadedDashboard
from sandbox.design.window import Window
from sandbox.promapi import PrometheusClient, PrometheusError
from sandbox.render.query import legend, substitute
from sandbox.render.render import step_for

__all__ = [
    "SUSTAIN_S",
    "Anomaly",
    "SeriesSignal",
    "WindowResult",
    "detect",
    "evaluate_window",
    "known_metric_names",
    "new_versions",
]

SUSTAIN_S = 10.0
MIN_BASELINE_POINTS = 3


@dataclass(frozen=True)
class Anomaly:
    direction: int  # +1 above the baseline band, -1 below
    at: float  # first point of the first sustained excursion, Unix seconds
    baseline: float | None  # the baseline median (None: the series is new)
    peak: float  # the value furthest from the baseline after the injection


@dataclass(frozen=True)
class SeriesSignal:
    panel_key: str
    panel_label: str
    ref_id: str
    series: str  # legend of the series
    area: str | None
    anomaly: Anomaly


@dataclass
class WindowResult:
    window: Window
    signals: list[SeriesSignal] = field(default_factory=list)  # sorted by time
    errors: dict[str, str] = field(default_factory=dict)  # "panel, query" -> message
    panels_with_data: set[str] = field(default_factory=set)
    series_seen: dict[str, set[str]] = field(default_factory=dict)  # panel key -> legends


def _run_length(step_s: float) -> int:
    return max(2, math.ceil(SUSTAIN_S / step_s))


def detect(
    times: Sequence[float],
    values: Sequence[float],
    injected_at: float,
    step_s: float,
    baseline_from: float | None = None,
) -> Anomaly | None:
    """The first sustained excursion of a series out of its baseline band (the values from
    ``baseline_from`` to the injection), or None."""
    since = -math.inf if baseline_from is None else baseline_from
    base = [
        v
        for t, v in zip(times, values, strict=False)
        if since <= t < injected_at and math.isfinite(v)
    ]
    after = [(t, v) for t, v in zip(times, values, strict=False) if t >= injected_at]
    need = _run_length(step_s)
    if len(base) < MIN_BASELINE_POINTS:
        run: list[tuple[float, float]] = []
        for t, v in after:
            if math.isfinite(v) and v != 0:
                run.append((t, v))
                if len(run) >= need:
                    peak = max((p for _, p in after if math.isfinite(p)), key=abs)
                    return Anomaly(1 if peak > 0 else -1, run[0][0], None, peak)
            else:
                run = []
        return None
    median = statistics.median(base)
    spread = max(abs(v - median) for v in base)
    band = max(1.5 * spread, 0.2 * abs(median), 1e-9)
    run_start: float | None = None
    run_len, direction = 0, 0
    for t, v in after:
        side = 0 if not math.isfinite(v) or abs(v - median) <= band else (1 if v > median else -1)
        if side and side == direction:
            run_len += 1
        elif side:
            run_start, run_len, direction = t, 1, side
        else:
            run_start, run_len, direction = None, 0, 0
        if run_len >= need and run_start is not None:
            finite = [p for _, p in after if math.isfinite(p)]
            peak = max(finite, key=lambda p: abs(p - median))
            return Anomaly(direction, run_start, median, peak)
    return None


def new_versions(prom: PrometheusClient, window: Window) -> set[str]:
    """Model versions that served after the injection but not in the baseline (a rollout's
    canary), from the ``version`` label of the engines' own series (other exporters use that
    label for other things)."""

    def versions(at: float, span: float) -> set[str]:
        query = f'group by (version) (last_over_time({{__name__=~"vllm:.+", version!=""}}[{max(1, int(span))}s]))'
        try:
            found = prom.instant(query, at)
        except PrometheusError:
            return set()
        return {s.labels["version"] for s in found if s.labels.get("version")}

    before = versions(window.injected_at - 1, window.injected_at - 1 - window.start)
    after = versions(window.end, window.end - window.injected_at)
    return after - before


def window_step(window: Window) -> float:
    return max(step_for(window.start, window.end), window.step_s)


def evaluate_window(
    dashboards: Sequence[LoadedDashboard], window: Window, timeout_s: float = 30.0
) -> WindowResult:
    """Every query of every panel over ``window``; anomalous series become signals."""
    result = WindowResult(window)
    step = window_step(window)
    with PrometheusClient(window.prometheus_url, timeout_s=timeout_s) as prom:
        fresh = new_versions(prom, window)
        for dash in dashboards:
            for panel in dash.panels:
                for query in panel.queries:
                    expr = substitute(query.expr, {}, step, window.end - window.start)
                    try:
                        found = prom.range(expr, window.start, window.end, step)
                    except PrometheusError as exc:
                        message = str(exc).split(": ", 1)[-1]
                        result.errors[f"{panel.label}, query {query.ref_id}"] = (
                            f"{message} (query: {query.expr})"
                        )
                        continue
                    for series in found:
                        name = legend(query.legend, dict(series.labels))
                        if any(math.isfinite(v) for v in series.values):
                            result.panels_with_data.add(panel.key)
                            result.series_seen.setdefault(panel.key, set()).add(name)
                        anomaly = detect(
                            series.times,
                            series.values,
                            window.injected_at,
                            step,
                            window.baseline_from,
                        )
                        if anomaly is not None:
                            result.signals.append(
                                SeriesSignal(
                                    panel.key,
                                    panel.label,
                                    query.ref_id,
                                    f"{query.ref_id}:{name}",
                                    area_of(query.expr, series.labels, fresh),
                                    anomaly,
                                )
                            )
    result.signals.sort(key=lambda s: (s.anomaly.at, s.panel_key, s.series))
    return result


def known_metric_names(window: Window, timeout_s: float = 30.0) -> set[str]:
    """Every metric name stored in the window's Prometheus."""
    with PrometheusClient(window.prometheus_url, timeout_s=timeout_s) as prom:
        return prom.metric_names()
