"""Evaluate an incident's checks over a time window from Prometheus' stored samples.

Checks are evaluated with range queries after the fact (one step per scrape interval), so a
short breach between two polls is not missed and the verdict does not depend on how often the
drill looked. Nothing passes vacuously: an anomalous check without data fails, a check naming a
metric Prometheus does not know fails with that name, and the alerts that fired are read back
from Prometheus' ``ALERTS`` series with the time each first fired.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from sandbox.drill.manifest import Check, IncidentManifest
from sandbox.promapi import PrometheusClient, PrometheusError, Reduce, reduce_series
from sandbox.promql import metric_names

__all__ = [
    "AlertFiring",
    "CheckResult",
    "alerts_fired",
    "current_breaches",
    "evaluate",
    "evaluate_signature",
    "format_value",
    "grid_start",
    "known_metrics",
    "unknown_metrics",
]


@dataclass(frozen=True)
class CheckResult:
    check: Check
    kind: str  # anomalous | normal | recovery
    breached: bool  # at any step of the window
    first_breach_at: float | None
    worst: float | None  # the most breached value seen (highest for above, lowest for below)
    samples: int
    error: str = ""

    @property
    def ok(self) -> bool:
        """What the incident wants: anomalous checks breached, others never breached."""
        if self.error:
            return False
        return self.breached if self.kind == "anomalous" else not self.breached

    @property
    def margin(self) -> float | None:
        """Worst value over threshold for an ``above`` check (threshold over worst for
        ``below``); 2 or more is the margin an anomalous check should reach. None without data
        or with a threshold of 0."""
        c = self.check
        if self.worst is None:
            return None
        if c.above is not None:
            return self.worst / c.above if c.above > 0 else None
        if self.worst <= 0:
            return math.inf
        return c.below / self.worst if c.below is not None else None


@dataclass(frozen=True)
class AlertFiring:
    name: str
    severity: str
    first_at: float


def format_value(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "no data"
    return f"{value:.3g}{(' ' + unit) if unit and unit != 'ratio' else ''}"


def known_metrics(prom: PrometheusClient) -> set[str]:
    """Every metric name Prometheus has stored, its targets declare (a labelled histogram
    with no observation yet still has metadata), or its recording rules produce."""
    names = prom.metric_names()
    metadata = prom.get("/api/v1/metadata", {}, "metric metadata")["data"]
    for family, entries in metadata.items():
        names.add(family)
        kinds = {e.get("type") for e in entries}
        if kinds & {"histogram", "summary"}:
            names.update(f"{family}{s}" for s in ("_bucket", "_count", "_sum"))
        if "counter" in kinds and not family.endswith("_total"):
            names.add(f"{family}_total")
    rules = prom.get("/api/v1/rules", {"type": "record"}, "recording rules")["data"]
    names.update(r["name"] for g in rules.get("groups", []) for r in g.get("rules", []))
    names.add("ALERTS")
    names.add("ALERTS_FOR_STATE")
    return names


def unknown_metrics(checks: Iterable[Check], known: set[str]) -> dict[str, list[str]]:
    """Check name -> the metric names of its expression that Prometheus does not know."""
    out: dict[str, list[str]] = {}
    for check in checks:
        missing = sorted(metric_names(check.expr) - known)
        if missing:
            out[check.name] = missing
    return out


def grid_start(start: float, end: float, step: float) -> float:
    """Where a range query over ``[start, end]`` must begin so that its last point is ``end``
    itself. A grid counted from ``start`` ends up to one step before ``end``, and misses an
    alert or a breach that began in that last step (the drill judges the window the moment
    the alert fires)."""
    step = max(step, 1.0)
    return end - math.ceil(max(end - start, 0.0) / step) * step


def evaluate(
    prom: PrometheusClient, check: Check, kind: str, start: float, end: float, step: float
) -> CheckResult:
    try:
        # The worst series at each step: the worst replica, tenant or version.
        series = reduce_series(
            prom.range(check.expr, grid_start(start, end, step), end, step), Reduce.MAX
        )
        series = [(t, v) for t, v in series if t >= start]
    except PrometheusError as exc:
        return CheckResult(check, kind, False, None, None, 0, error=str(exc))
    if not series:
        if kind == "anomalous":
            # An anomaly nobody measured is not an anomaly: no data fails, whatever no_data says.
            return CheckResult(check, kind, False, None, None, 0, error="no data in the window")
        breached = check.breached(None)
        return CheckResult(check, kind, breached, start if breached else None, None, 0)
    breaches = [(t, v) for t, v in series if check.breached(v)]
    values = [v for _, v in series]
    worst = max(values) if check.above is not None else min(values)
    return CheckResult(
        check, kind, bool(breaches), breaches[0][0] if breaches else None, worst, len(series)
    )


def evaluate_signature(
    prom: PrometheusClient, manifest: IncidentManifest, start: float, end: float, step: float
) -> list[CheckResult]:
    sig = manifest.signature
    results = [evaluate(prom, c, "anomalous", start, end, step) for c in sig.anomalous]
    return results + [evaluate(prom, c, "normal", start, end, step) for c in sig.normal]


def alerts_fired(
    prom: PrometheusClient, start: float, end: float, step: float
) -> list[AlertFiring]:
    """Every alert Prometheus had firing in the window, with its severity and first time.

    Only fresh samples count. A Prometheus stopped while an alert fired writes no staleness
    marker, so after a restart its last ALERTS sample is still "firing" for the 5-minute
    lookback: a drill started within 5 minutes of ``make down`` saw the last drill's page
    fire 2 s after its own injection."""
    fresh_s = max(10.0, 5 * step)
    expr = f'timestamp(ALERTS{{alertstate="firing"}}) > time() - {fresh_s:g}'
    series = prom.range(expr, grid_start(start, end, step), end, step)
    first: dict[str, AlertFiring] = {}
    for s in series:
        name = s.labels.get("alertname", "?")
        times = [t for t, v in s.points if v > 0 and t >= start]
        if not times:
            continue
        seen = first.get(name)
        if seen is None or min(times) < seen.first_at:
            first[name] = AlertFiring(name, s.labels.get("severity", ""), min(times))
    return sorted(first.values(), key=lambda a: a.first_at)


def current_breaches(
    prom: PrometheusClient, checks: list[Check]
) -> list[tuple[Check, float | None]]:
    """The checks breached right now, with their values (an unanswerable query counts as breached)."""
    breached: list[tuple[Check, float | None]] = []
    for check in checks:
        try:
            value = prom.value(check.expr, Reduce.MAX)
        except PrometheusError:
            breached.append((check, None))
            continue
        if check.breached(value):
            breached.append((check, value))
    return breached
