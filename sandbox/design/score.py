"""Criteria, points and evidence: a dashboard's grade over every incident's window.

| criterion | points | full marks when |
|---|---|---|
| detection | 10 | some panel shows every incident's fault against its own baseline |
| localisation | 30 | the first panel that points at an area points at the incident's answer |
|  |  | (0.75 when the answer comes within two query steps of a wrong first area, 0.5 later) |
| time to signal | 10 | that right-area signal comes within 60 s of the injection (none after 300 s) |
| distinguishability | 20 | every pair of incidents differs on a panel that points at an area |
| pitfalls | 25 | none of the pitfalls of ``lint`` |
| panel budget | 5 | at most ``PANEL_BUDGET`` panels per dashboard |

Symptom panels (TTFT, end-to-end latency, request rate) earn detection but not localisation,
and tell two incidents apart only a quarter as much: an on-call who sees "slower" in both
cannot tell them apart, one who sees "slower in engine.queue" against "slower in retrieval" can.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from sandbox.design.evaluate import (
    SeriesSignal,
    WindowResult,
    evaluate_window,
    known_metric_names,
    window_step,
)
from sandbox.design.lint import PITFALLS, lint
from sandbox.design.load import LoadedDashboard
from sandbox.design.window import RATE_WINDOW_S, Window

__all__ = [
    "PANEL_BUDGET",
    "POINTS",
    "Criterion",
    "Grade",
    "IncidentOutcome",
    "grade_dashboards",
    "score",
]

POINTS = {
    "detection": 10.0,
    "localisation": 30.0,
    "time-to-signal": 10.0,
    "distinguishability": 20.0,
    "pitfalls": 25.0,
    "panel-budget": 5.0,
}
PANEL_BUDGET = 12
FAST_S, SLOW_S = 60.0, 300.0
TIE_STEPS = 2  # signals this many query steps after the first are "at the same time"
SYMPTOM_WEIGHT = 0.25


@dataclass(frozen=True)
class Criterion:
    id: str
    points: float
    max: float  # 0 when the criterion does not apply (one incident has no pair to tell apart)
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class IncidentOutcome:
    incident: str
    expected: str
    detected: SeriesSignal | None  # the first signal of any panel
    first_area: str | None  # the area first pointed at
    first_area_panel: str | None
    right: SeriesSignal | None  # first signal pointing at the expected area
    credit: float  # localisation credit 0..1


@dataclass
class Grade:
    total: float
    criteria: list[Criterion]
    incidents: list[IncidentOutcome]
    matrix: dict[tuple[str, str], tuple[float, str]]  # pair -> (told apart 0..1, how)
    problems: list[str] = field(default_factory=list)
    query_errors: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # about the recordings, not the dashboard
    panels: int = 0
    seconds: float = 0.0


def _outcome(result: WindowResult) -> IncidentOutcome:
    window = result.window
    tie_s = TIE_STEPS * window_step(window)
    signals = result.signals
    detected = signals[0] if signals else None
    with_area = [s for s in signals if s.area]
    first_area, first_panel, credit = None, None, 0.0
    right = next((s for s in with_area if s.area == window.phase), None)
    if with_area:
        t0 = with_area[0].anomaly.at
        first = [s for s in with_area if s.anomaly.at == t0]
        tied = [s for s in with_area if s.anomaly.at <= t0 + tie_s]
        lead = next((s for s in first if s.area == window.phase), first[0])
        first_area, first_panel = lead.area, lead.panel_label
        others = sorted({s.area for s in tied if s.area and s.area != first_area})
        if others:
            first_panel += f" (within {tie_s:.0f} s also: {', '.join(others)})"
        if first_area == window.phase:
            credit, right = 1.0, lead
        elif any(s.area == window.phase for s in tied):
            credit = 0.75
            right = next(s for s in tied if s.area == window.phase)
        elif right is not None:
            credit = 0.5
    return IncidentOutcome(
        window.incident, window.phase, detected, first_area, first_panel, right, credit
    )


def _fingerprint(result: WindowResult) -> dict[tuple[str, str], tuple[int, bool]]:
    return {
        (s.panel_key, s.series): (s.anomaly.direction, s.area is not None) for s in result.signals
    }


def _matrix(results: Sequence[WindowResult]) -> dict[tuple[str, str], tuple[float, str]]:
    prints = {r.window.incident: (_fingerprint(r), r) for r in results}
    labels = {s.panel_key: s.panel_label for r in results for s in r.signals}
    matrix: dict[tuple[str, str], tuple[float, str]] = {}
    for a, b in itertools.combinations(sorted(prints), 2):
        fa, fb = prints[a][0], prints[b][0]
        best, how = 0.0, "no panel differs"
        for key in sorted(set(fa) | set(fb)):
            da, db = fa.get(key, (0, False)), fb.get(key, (0, False))
            if da[0] == db[0]:
                continue
            weight = 1.0 if (da[1] or db[1]) else SYMPTOM_WEIGHT
            if weight > best:
                arrows = {1: "up", -1: "down", 0: "flat"}
                best = weight
                how = f"{labels[key[0]]} [{key[1]}]: {arrows[da[0]]} in {a}, {arrows[db[0]]} in {b}"
                if weight == 1.0:
                    break
        matrix[(a, b)] = (best, how)
    return matrix


def _fmt_s(seconds: float) -> str:
    return f"{seconds:.0f} s"


def score(
    dashboards: Sequence[LoadedDashboard],
    results: Sequence[WindowResult],
    known_metrics: set[str] | None,
) -> Grade:
    panels = [p for d in dashboards for p in d.panels]
    outcomes = [_outcome(r) for r in results]
    n = max(len(outcomes), 1)
    criteria: list[Criterion] = []

    evidence = []
    for o, r in zip(outcomes, results, strict=False):
        if o.detected:
            s = o.detected
            evidence.append(
                f"{o.incident}: {s.panel_label} [{s.series}] "
                f"{'rose' if s.anomaly.direction > 0 else 'fell'} at "
                f"+{_fmt_s(s.anomaly.at - r.window.injected_at)} "
                f"(baseline {'none' if s.anomaly.baseline is None else f'{s.anomaly.baseline:.4g}'}, "
                f"peak {s.anomaly.peak:.4g})"
            )
        else:
            evidence.append(f"{o.incident}: no panel left its baseline")
    detected = sum(1 for o in outcomes if o.detected)
    criteria.append(
        Criterion(
            "detection", POINTS["detection"] * detected / n, POINTS["detection"], tuple(evidence)
        )
    )

    evidence = []
    for o in outcomes:
        if o.first_area is None:
            evidence.append(
                f"{o.incident}: no panel that points at a phase moved (expected {o.expected})"
            )
            continue
        line = f"{o.incident}: first pointed at {o.first_area} by {o.first_area_panel}; expected {o.expected}"
        if o.credit == 0.5 and o.right is not None:
            line += f"; {o.expected} showed later on {o.right.panel_label}"
        evidence.append(line + f" -> {o.credit:g}")
    criteria.append(
        Criterion(
            "localisation",
            POINTS["localisation"] * sum(o.credit for o in outcomes) / n,
            POINTS["localisation"],
            tuple(evidence),
        )
    )

    evidence, credit = [], 0.0
    for o, r in zip(outcomes, results, strict=False):
        if o.right is None:
            evidence.append(f"{o.incident}: no panel pointed at {o.expected}")
            continue
        delay = max(0.0, o.right.anomaly.at - r.window.injected_at)
        part = 1.0 if delay <= FAST_S else max(0.0, (SLOW_S - delay) / (SLOW_S - FAST_S))
        credit += part
        evidence.append(
            f"{o.incident}: {o.expected} on {o.right.panel_label} after {_fmt_s(delay)}"
        )
    criteria.append(
        Criterion(
            "time-to-signal",
            POINTS["time-to-signal"] * credit / n,
            POINTS["time-to-signal"],
            tuple(evidence),
        )
    )

    matrix = _matrix(results)
    pairs = max(len(matrix), 1)
    told = sum(v for v, _ in matrix.values())
    criteria.append(
        Criterion(
            "distinguishability",
            POINTS["distinguishability"] * told / pairs if matrix else 0.0,
            POINTS["distinguishability"] if matrix else 0.0,
            tuple(f"{a} vs {b}: {v:g} ({how})" for (a, b), (v, how) in matrix.items())
            or ("not applicable: one incident has no pair to tell apart; the total is scaled",),
        )
    )

    findings = lint(panels, known_metrics)
    lost = sum(PITFALLS[f.pitfall][1] * f.share for f in findings)
    criteria.append(
        Criterion(
            "pitfalls",
            max(0.0, POINTS["pitfalls"] - lost),
            POINTS["pitfalls"],
            tuple(
                f"{f.pitfall} (-{PITFALLS[f.pitfall][1] * f.share:.1f}): {f.evidence}"
                for f in findings
            )
            or ("no pitfall found",),
        )
    )

    over = sum(max(0, len(d.panels) - PANEL_BUDGET) for d in dashboards)
    silent = [p.label for p in panels if not any(p.key in r.panels_with_data for r in results)]
    quiet = [
        p.label
        for p in panels
        if p.key not in {s.panel_key for r in results for s in r.signals} and p.label not in silent
    ]
    evidence = [f"{d.name}: {len(d.panels)} panels (budget {PANEL_BUDGET})" for d in dashboards]
    if silent:
        evidence.append(f"no data in any recording: {', '.join(silent[:6])}")
    if quiet:
        evidence.append(f"moved in no incident (candidates to cut): {', '.join(quiet[:6])}")
    criteria.append(
        Criterion(
            "panel-budget",
            max(0.0, POINTS["panel-budget"] - over),
            POINTS["panel-budget"],
            tuple(evidence),
        )
    )

    problems = [m for d in dashboards for m in d.problems]
    errors: dict[str, str] = {}
    for r in results:
        errors.update(r.errors)
    notes = [
        f"{r.window.incident}: the baseline ({r.window.injected_at - r.window.baseline_from:.0f} s "
        f"of steady traffic) lies within {RATE_WINDOW_S:.0f} s (a rate window) of the traffic's "
        "start: panels of rates may still be ramping up at the injection, and read as signals"
        for r in results
        if r.window.ramping_at_baseline
    ]
    return Grade(
        notes=notes,
        total=round(100 * sum(c.points for c in criteria) / sum(c.max for c in criteria), 1),
        criteria=criteria,
        incidents=outcomes,
        matrix=matrix,
        problems=problems,
        query_errors=errors,
        panels=len(panels),
    )


def grade_dashboards(
    dashboards: Sequence[LoadedDashboard], windows: Sequence[Window], timeout_s: float = 30.0
) -> Grade:
    """Evaluate every panel over every window and score the result."""
    import time

    started = time.monotonic()
    results = [evaluate_window(dashboards, w, timeout_s) for w in windows]
    known: set[str] | None = set()
    for window in windows:
        try:
            known |= known_metric_names(window, timeout_s)  # type: ignore[operator]
        except Exception:
            known = None
            break
    grade = score(dashboards, results, known if known else None)
    grade.seconds = time.monotonic() - started
    return grade
