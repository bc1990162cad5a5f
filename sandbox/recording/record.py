"""``sandbox record``: a window of any Prometheus, with optional spans, as a recording."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import yaml

from sandbox.durations import duration_s
from sandbox.promapi import PrometheusClient, PrometheusError
from sandbox.recording.capture import ALL_SERIES, capture_series
from sandbox.recording.drill_hook import spans_between
from sandbox.recording.format import IncidentRef, Meta, RecordedSeries, Recording, Window

__all__ = ["record_window", "scrape_interval_of"]


def scrape_interval_of(prom: PrometheusClient, series: Sequence[RecordedSeries]) -> float:
    """The source's global scrape interval, from its config; else the median sample gap."""
    try:
        body = prom.get("/api/v1/status/config", {}, "Prometheus config")
        config = yaml.safe_load(body["data"]["yaml"])
        return duration_s(str(config["global"]["scrape_interval"]))
    except (PrometheusError, KeyError, TypeError, ValueError, yaml.YAMLError):
        pass
    gaps = [b - a for s in series for a, b in zip(s.times_ms, s.times_ms[1:], strict=False)]
    return statistics.median(gaps) / 1000 if gaps else 15.0


def record_window(
    prom: PrometheusClient,
    start: float,
    end: float,
    matchers: Sequence[str] = (),
    *,
    spans_file: Path | None = None,
    injected_at: float | None = None,
    incident_id: str | None = None,
    scrape_interval_s: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> Recording:
    series = capture_series(prom, start, end, list(matchers) or [ALL_SERIES], progress=progress)
    meta = Meta(
        created_at=time.time(),
        source="record",
        prometheus_url=prom.url,
        window=Window(start=start, end=end),
        scrape_interval_s=scrape_interval_s or scrape_interval_of(prom, series),
        injected_at=injected_at,
        incident=IncidentRef(id=incident_id, manifest_sha256=None, git_commit=None)
        if incident_id
        else None,
        matchers=list(matchers),
        recorded_rules=["ALERTS", "ALERTS_FOR_STATE"],
    )
    spans = spans_between(spans_file, start, end) if spans_file else []
    return Recording(meta=meta, series=series, spans=spans)
