"""`sandbox rules grade`: a learner's Prometheus alerting rules over every incident's window.

Each alert's expression runs as a range query over the window; a series that stays present for
the rule's ``for:`` fires then (as Prometheus would, to within one step). A firing before the
injection is a false page (the recordings' baselines are healthy); the first firing after it is
the page, and its delay counts. An alert that can never fire is named with the reason: a metric
no recording holds, or a threshold its expression cannot reach (a ratio above 1, a negative
rate, a quantile above the histogram's last finite bucket).

| criterion | points | full marks when |
|---|---|---|
| coverage | 40 | some alert pages on every incident |
| speed | 20 | each page within 120 s of the injection (none after 600 s) |
| false pages | 30 | no alert fires during any baseline (10 points each) |
| alerts that can fire | 10 | every alert can fire |
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sandbox.design.evaluate import known_metric_names, window_step
from sandbox.design.load import GradeInputError
from sandbox.design.score import Criterion
from sandbox.design.window import Window
from sandbox.durations import duration_s
from sandbox.promapi import PrometheusClient, PrometheusError
from sandbox.promql import metric_names

__all__ = [
    "AlertRule",
    "RulesGrade",
    "firing_runs",
    "grade_rules",
    "load_rule_files",
    "load_rules",
    "rules_text",
]

FAST_S, SLOW_S = 120.0, 600.0


@dataclass(frozen=True)
class AlertRule:
    name: str
    expr: str  # the learner's recording rules of the same file inlined where used bare
    for_s: float
    group: str


@dataclass
class RulesGrade:
    total: float
    criteria: list[Criterion]
    pages: dict[str, tuple[str, float] | None]  # incident -> (alert, delay s) of the first page
    false_pages: list[str]
    never_fire: dict[str, str]  # alert -> why
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _for_s(text: Any) -> float:
    """A rule's ``for:`` in seconds; without one it fires as soon as its expression holds."""
    return 0.0 if text in (None, "") else duration_s(str(text))


def load_rules(path: Path | str) -> tuple[list[AlertRule], list[str]]:
    """The alerting rules of a Prometheus rules file, and every problem found reading it."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GradeInputError(f"{path}: no such file") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise GradeInputError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("groups"), list):
        raise GradeInputError(f"{path}: not a Prometheus rules file (no top-level 'groups' list)")
    problems: list[str] = []
    records: dict[str, str] = {}
    raw_alerts: list[tuple[str, dict[str, Any]]] = []
    for g_index, group in enumerate(data["groups"]):
        if not isinstance(group, dict):
            problems.append(f"{path}: group #{g_index + 1} is not a mapping; skipped")
            continue
        gname = str(group.get("name") or f"#{g_index + 1}")
        for rule in group.get("rules") or []:
            if not isinstance(rule, dict) or not isinstance(rule.get("expr"), (str, int, float)):
                problems.append(f"{path}: group {gname}: a rule without an 'expr'; skipped")
                continue
            if rule.get("record"):
                records[str(rule["record"])] = str(rule["expr"]).strip()
            elif rule.get("alert"):
                raw_alerts.append((gname, rule))
    alerts = []
    for gname, rule in raw_alerts:
        name = str(rule["alert"])
        try:
            for_s = _for_s(rule.get("for"))
        except ValueError as exc:
            problems.append(f"{path}: alert {name}: for: {exc}; graded with for: 0s")
            for_s = 0.0
        expr = str(rule["expr"]).strip()
        for record, body in records.items():
            expr = re.sub(rf"(?<![\w:]){re.escape(record)}(?![\w:{{])", f"({body})", expr)
        alerts.append(AlertRule(name, expr, for_s, gname))
    if not alerts:
        problems.append(f"{path}: no alerting rule (a rule with 'alert:' and 'expr:')")
    return alerts, problems


def _impossible(expr: str, le_max: float | None) -> str | None:
    compact = re.sub(r"\s+", " ", expr)
    match = re.search(r"(>=?|<=?|==)\s*(-?[0-9.]+(?:e[+-]?\d+)?)\s*$", compact)
    if not match:
        return None
    op, threshold = match.group(1), float(match.group(2))
    lhs = compact[: match.start()]
    if (
        op.startswith(">")
        and threshold >= 1
        and re.search(r"_perc\b|(?<![a-z])ratio|_share\b|fraction", lhs)
    ):
        if not re.search(r"\*\s*100", lhs):
            return f"a ratio (0 to 1) compared {op} {threshold:g}"
    if (
        op.startswith("<")
        and threshold <= 0
        and op == "<"
        and re.search(
            r"\b(rate|increase|count|histogram_quantile)\s*\(|_total\b|_count\b|_seconds", lhs
        )
    ):
        return f"a quantity that is never negative compared < {threshold:g}"
    if le_max is not None and op.startswith(">") and "histogram_quantile" in lhs:
        if threshold >= le_max:
            return (
                f"histogram_quantile is at most the last finite bucket ({le_max:g}), "
                f"and the threshold is {threshold:g}"
            )
    return None


def _le_max(expr: str, windows: Sequence[Window]) -> float | None:
    buckets = [n for n in metric_names(expr) if "_bucket" in n]
    if not buckets:
        return None
    found: list[float] = []
    for window in windows:
        try:
            with PrometheusClient(window.prometheus_url) as prom:
                for name in buckets:
                    for sample in prom.instant(
                        f'count by (le) ({{__name__="{name}"}})', window.end
                    ):
                        le = float(sample.labels.get("le", "nan"))
                        if math.isfinite(le):
                            found.append(le)
        except (PrometheusError, ValueError):
            continue
    return max(found) if found else None


def firing_runs(
    times: Sequence[float], values: Sequence[float], for_s: float, step: float
) -> list[tuple[float, float]]:
    """(fired at, last present) of each run of a series that stays present for ``for_s``."""
    runs: list[tuple[float, float]] = []
    run_start: float | None = None
    fired: float | None = None
    previous: float | None = None
    for t, v in zip(times, values, strict=False):
        if not math.isfinite(v):
            continue
        if run_start is None or previous is None or t - previous > 1.5 * step:
            if fired is not None and previous is not None:
                runs.append((fired, previous))
            run_start, fired = t, None
        previous = t
        if fired is None and t - run_start >= for_s:
            fired = t
    if fired is not None and previous is not None:
        runs.append((fired, previous))
    return runs


def _held_through_baseline(
    times: Sequence[float], values: Sequence[float], window: Window, step: float
) -> float | None:
    """The baseline's length when the series is present at every step of it, else None."""
    inside = [
        (t, v)
        for t, v in zip(times, values, strict=False)
        if window.baseline_from <= t < window.injected_at
    ]
    expected = int((window.injected_at - window.baseline_from) / step)
    if expected < 3 or len(inside) < expected - 1 or not all(math.isfinite(v) for _, v in inside):
        return None
    return window.injected_at - window.baseline_from


def load_rule_files(paths: Sequence[Path | str]) -> tuple[list[AlertRule], list[str]]:
    """Several rules files as one set (recording rules of one file are inlined only there)."""
    alerts: list[AlertRule] = []
    problems: list[str] = []
    for path in paths:
        found, found_problems = load_rules(path)
        alerts += found
        problems += found_problems
    return alerts, problems


def grade_rules(path: Path | str | Sequence[Path | str], windows: Sequence[Window]) -> RulesGrade:
    """Grade one rules file, or several as one alert set."""
    import time

    started = time.monotonic()
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    alerts, problems = load_rule_files(paths)
    known: set[str] = set()
    for window in windows:
        try:
            known |= known_metric_names(window)
        except PrometheusError:
            pass
    never: dict[str, str] = {}
    for alert in alerts:
        missing = sorted(metric_names(alert.expr) - known) if known else []
        if missing:
            never[alert.name] = f"names metrics no recording holds: {', '.join(missing)}"
            continue
        why = _impossible(alert.expr, _le_max(alert.expr, windows))
        if why:
            never[alert.name] = why
    pages: dict[str, tuple[str, float] | None] = {}
    false_pages: list[str] = []
    for window in windows:
        step = window_step(window)
        first: tuple[str, float] | None = None
        with PrometheusClient(window.prometheus_url, timeout_s=30) as prom:
            for alert in alerts:
                try:
                    found = prom.range(alert.expr, window.start, window.end, step)
                except PrometheusError as exc:
                    message = str(exc).split(": ", 1)[-1]
                    text = f"alert {alert.name}: Prometheus refused its expr: {message} (expr: {alert.expr})"
                    if text not in problems:
                        problems.append(text)
                    never[alert.name] = f"Prometheus refused its expression: {message}"
                    continue
                # Prometheus needs `for:` of history before the window can fire anything
                healthy_from = max(window.start + alert.for_s, window.baseline_from)
                false_page: str | None = None
                pages_here: list[float] = []
                for series in found:
                    for fired, last in firing_runs(series.times, series.values, alert.for_s, step):
                        if fired < window.injected_at and last >= healthy_from:
                            false_page = (
                                f"{alert.name} fired during {window.incident}'s baseline, "
                                f"{window.injected_at - max(fired, healthy_from):.0f} s "
                                "before the injection"
                            )
                        elif fired >= window.injected_at:
                            pages_here.append(fired)
                    held = _held_through_baseline(series.times, series.values, window, step)
                    if false_page is None and held and alert.for_s > held:
                        false_page = (
                            f"{alert.name}: its condition held through all of "
                            f"{window.incident}'s {held:.0f} s baseline (shorter than its "
                            f"for: {alert.for_s:.0f}s); on a longer healthy day it pages"
                        )
                if false_page is not None:
                    false_pages.append(false_page)
                elif pages_here:
                    delay = min(pages_here) - window.injected_at
                    if first is None or delay < first[1]:
                        first = (alert.name, delay)
        pages[window.incident] = first
    n = max(len(windows), 1)
    paged = [p for p in pages.values() if p]
    speed = sum(
        1.0 if d <= FAST_S else max(0.0, (SLOW_S - d) / (SLOW_S - FAST_S)) for _, d in paged
    )
    criteria = [
        Criterion(
            "coverage",
            40.0 * len(paged) / n,
            40.0,
            tuple(f"{i}: {'paged by ' + p[0] if p else 'no page'}" for i, p in pages.items()),
        ),
        Criterion(
            "speed",
            20.0 * speed / n,
            20.0,
            tuple(f"{i}: {p[0]} after {p[1]:.0f} s" for i, p in pages.items() if p),
        ),
        Criterion(
            "false-pages",
            max(0.0, 30.0 - 10.0 * len(false_pages)) if alerts else 0.0,
            30.0,
            tuple(false_pages) or ("no alert fired during a baseline",),
        ),
        Criterion(
            "can-fire",
            10.0 * (1 - len(never) / len(alerts)) if alerts else 0.0,
            10.0,
            tuple(f"{a}: can never fire: {why}" for a, why in never.items())
            or ("every alert can fire",),
        ),
    ]
    return RulesGrade(
        total=round(sum(c.points for c in criteria), 1),
        criteria=criteria,
        pages=pages,
        false_pages=false_pages,
        never_fire=never,
        problems=problems,
        seconds=time.monotonic() - started,
    )


def rules_text(grade: RulesGrade, name: str) -> str:
    lines = [f"Alert rules grade: {grade.total:.0f}/100 ({name}; {grade.seconds:.1f} s)", ""]
    for c in grade.criteria:
        lines.append(f"  {c.id:<12} {c.points:5.1f} / {c.max:g}")
        lines += [f"      - {e}" for e in c.evidence]
    if grade.problems:
        lines += ["", "Input problems:"] + [f"  - {p}" for p in grade.problems]
    return "\n".join(lines)
