"""A grade as text for the terminal, as JSON for tools, and as pictures: the learner's
dashboard drawn over each incident's window by the same renderer as the console and reports."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sandbox.design.load import LoadedDashboard
from sandbox.design.score import Grade
from sandbox.design.window import Window

__all__ = ["draw_pictures", "grade_json", "grade_text"]


def grade_text(grade: Grade, names: Sequence[str]) -> str:
    lines = [
        f"Dashboard grade: {grade.total:.0f}/100 ({', '.join(names)}; {grade.panels} panels, "
        f"{len(grade.incidents)} incidents, {grade.seconds:.1f} s)",
        "",
    ]
    for c in grade.criteria:
        shown = f"{c.points:5.1f} / {c.max:g}" if c.max else "  n/a"
        lines.append(f"  {c.id:<20} {shown}")
        lines += [f"      - {e}" for e in c.evidence]
    if grade.matrix:
        incidents = sorted({i for pair in grade.matrix for i in pair})
        width = max(len(i) for i in incidents)
        lines += ["", "Told apart (1 = by a panel that points at a phase, 0.25 = by a symptom):"]
        lines.append(" " * (width + 2) + " ".join(f"{i[:8]:>8}" for i in incidents))
        for a in incidents:
            cells = []
            for b in incidents:
                value = grade.matrix.get((a, b)) or grade.matrix.get((b, a))
                cells.append(f"{'-' if a == b else f'{value[0]:g}' if value else '?':>8}")
            lines.append(f"  {a:<{width}}" + " ".join(cells))
    if grade.notes:
        lines += ["", "About the recordings:"]
        lines += [f"  - {n}" for n in grade.notes]
    if grade.problems:
        lines += ["", "Input problems (graded without these parts):"]
        lines += [f"  - {p}" for p in grade.problems]
    if grade.query_errors:
        lines += ["", "Queries Prometheus refused:"]
        lines += [f"  - {where}: {message}" for where, message in grade.query_errors.items()]
    return "\n".join(lines)


def grade_json(grade: Grade) -> dict[str, Any]:
    out = asdict(grade)
    out["matrix"] = [
        {"a": a, "b": b, "told_apart": v, "how": how} for (a, b), (v, how) in grade.matrix.items()
    ]
    encoded: dict[str, Any] = json.loads(json.dumps(out, default=str))
    return encoded


def draw_pictures(
    dashboards: Sequence[LoadedDashboard], windows: Sequence[Window], out_dir: Path
) -> list[Path]:
    """One composite PNG (and HTML page) per dashboard and incident; failures are reported in
    the returned list's place as missing, never raised."""
    from sandbox.render import render_dashboard

    pictures = []
    for window in windows:
        for dash in dashboards:
            if not dash.panels:
                continue
            raw = {**dash.raw, "uid": dash.name}
            try:
                with warnings.catch_warnings():  # an empty panel makes matplotlib warn
                    warnings.simplefilter("ignore", UserWarning)
                    result = render_dashboard(
                        raw,
                        window.prometheus_url,
                        window.start,
                        window.end,
                        out_dir=out_dir / window.incident,
                        annotations=[(window.injected_at, "fault injected")],
                    )
            except Exception:  # a picture is a bonus; the grade stands without it
                continue
            pictures.append(result.composite)
    return pictures
