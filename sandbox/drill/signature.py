"""Evaluate an incident's checks over a time window from Prometheus' stored samples.

Checks are evaluated with range queries after the fact (one step per scrape interval), so a
short breach between two polls is not missed and the verdict does not depend on how often the
drill looked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sandbox.drill.manifest import Check
from sandbox.promapi import PrometheusClient, PrometheusError, Reduce, reduce_series

__all__ = ["CheckResult", "current_breaches", "evaluate", "format_value"]


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


def format_value(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "no data"
    return f"{value:.3g}{(' ' + unit) if unit and unit != 'ratio' else ''}"


def evaluate(
    prom: PrometheusClient, check: Check, kind: str, start: float, end: float, step: float
) -> CheckResult:
    try:
        # The worst series at each step: the worst replica, tenant or version.
        series = reduce_series(prom.range(check.expr, start, end, step), Reduce.MAX)
    except PrometheusError as exc:
        return CheckResult(check, kind, False, None, None, 0, error=str(exc))
    if not series:
        breached = check.breached(None)
        return CheckResult(check, kind, breached, start if breached else None, None, 0)
    breaches = [(t, v) for t, v in series if check.breached(v)]
    values = [v for _, v in series]
    worst = max(values) if check.above is not None else min(values)
    return CheckResult(
        check, kind, bool(breaches), breaches[0][0] if breaches else None, worst, len(series)
    )


def current_breaches(
    prom: PrometheusClient, checks: list[Check]
) -> list[tuple[Check, float | None]]:
    """The checks breached right now, with their values (an unanswerable query counts as breached)."""
    breached = []
    for check in checks:
        try:
            value = prom.value(check.expr, Reduce.MAX)
        except PrometheusError:
            breached.append((check, None))
            continue
        if check.breached(value):
            breached.append((check, value))
    return breached
