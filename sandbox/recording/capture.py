"""Read a window of raw samples from any Prometheus (the sandbox's or a team's own).

Raw means the samples exactly as scraped, with their own timestamps, not a range query's
evaluated steps: for each metric name, one instant query of a range vector
(``{__name__="m"}[<window>ms]`` at the window's end) returns every stored sample of the
window. Replayed, they give back the same query results as the source, for raw series exactly
and for ``rate``/``histogram_quantile`` too (same samples, same arithmetic). What is lost:
staleness markers (a series that ended goes absent at once at the source, after the 5-minute
lookback in a replay) and exemplars.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from sandbox.promapi import PrometheusClient, PrometheusError
from sandbox.recording.format import RecordedSeries

__all__ = ["ALL_SERIES", "NoDataError", "capture_series", "metric_names"]

ALL_SERIES = '{__name__=~".+"}'


class NoDataError(PrometheusError):
    """The window holds no sample for the selectors."""


def _stamp(t: float) -> str:
    return f"{t:.3f}"


def metric_names(
    prom: PrometheusClient, start: float, end: float, matchers: Sequence[str]
) -> list[str]:
    params: dict[str, Any] = {"start": _stamp(start), "end": _stamp(end), "match[]": list(matchers)}
    body = prom.get("/api/v1/label/__name__/values", params, "metric names of the window")
    return sorted(body.get("data") or [])


def _series_keys(
    prom: PrometheusClient, start: float, end: float, matchers: Sequence[str]
) -> set[tuple[tuple[str, str], ...]]:
    params: dict[str, Any] = {"start": _stamp(start), "end": _stamp(end), "match[]": list(matchers)}
    body = prom.get("/api/v1/series", params, "series of the window")
    return {tuple(sorted(labels.items())) for labels in body.get("data") or []}


def _raw(prom: PrometheusClient, name: str, start: float, end: float) -> list[RecordedSeries]:
    # A range selector is left-open, (end - d, end]: widen by 1 ms to keep a sample at `start`.
    width_ms = math.ceil((end - start) * 1000) + 1
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    expr = f'{{__name__="{quoted}"}}[{width_ms}ms]'
    body = prom.get("/api/v1/query", {"query": expr, "time": _stamp(end)}, f"raw samples of {name}")
    out = []
    for item in body["data"]["result"]:
        points = item.get("values") or []
        times = tuple(round(float(t) * 1000) for t, _ in points)
        values = tuple(float(v) for _, v in points)
        if times:
            out.append(RecordedSeries(dict(item["metric"]), times, values))
    return out


def capture_series(
    prom: PrometheusClient,
    start: float,
    end: float,
    matchers: Sequence[str] = (ALL_SERIES,),
    progress: Callable[[str], None] | None = None,
) -> list[RecordedSeries]:
    """Every raw sample in ``[start, end]`` of the series the selectors match.

    Raises PrometheusError when Prometheus cannot be reached or refuses (401/403 named as
    unauthorised), NoDataError when the window holds nothing.
    """
    if end <= start:
        raise ValueError(f"the window ends ({end}) before it starts ({start})")
    matchers = list(matchers) or [ALL_SERIES]
    names = metric_names(prom, start, end, matchers)
    if not names:
        raise NoDataError(
            f"{prom.url}: no series matching {', '.join(matchers)} between "
            f"{_stamp(start)} and {_stamp(end)} (is the window right? times are Unix seconds or ISO 8601)"
        )
    wanted = None if matchers == [ALL_SERIES] else _series_keys(prom, start, end, matchers)
    series: list[RecordedSeries] = []
    for i, name in enumerate(names, 1):
        for s in _raw(prom, name, start, end):
            if wanted is None or tuple(sorted(s.labels.items())) in wanted:
                series.append(s)
        if progress and i % 50 == 0:
            progress(f"{i}/{len(names)} metrics, {len(series)} series")
    if not series:
        raise NoDataError(f"{prom.url}: the window holds no sample for {', '.join(matchers)}")
    return series
