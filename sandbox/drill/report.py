"""The drill's report: a terminal summary and one self-contained HTML file (inline CSS and SVG,
no external asset), with the timeline, the times to page/diagnose/recover, the score, the
signature verdicts, charts of the incident's key panels with the fault and the page marked,
and the incident's notes. ``result.json`` beside it holds the same verdicts as data
(``sandbox.drill.outcome``).

Charts: the manifest's ``report.panels`` are drawn here as inline SVG from Prometheus range
queries. When the dashboard renderer (``sandbox.render.render_dashboard``) is installed, its
images of the manifest's ``report.dashboard`` are embedded too.
"""

from __future__ import annotations

import base64
import html
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox.drill.outcome import DrillOutcome
from sandbox.drill.result import DrillResult
from sandbox.drill.signature import format_value
from sandbox.promapi import PrometheusClient, PrometheusError, label_key
from sandbox.settings import Settings

__all__ = ["summary_lines", "svg_chart", "write_report"]

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def _clock(ts: float) -> str:
    """Local wall-clock time of day, as the drill's timeline and the chart axes show it."""
    return time.strftime("%H:%M:%S", time.localtime(ts))


def _dur(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.0f} s"


def _margin(r: Any) -> str:
    margin = r.margin
    if margin is None:
        return ""
    if math.isinf(margin):
        return ", at 0 against the threshold"
    # Two significant digits, but never in exponent form: "100 times", not "1e+02 times".
    times = f"{margin:.0f}" if margin >= 10 else f"{margin:.2g}"
    return (
        f", {times} times the threshold"
        if r.check.above is not None
        else (f", the threshold is {times} times it")
    )


def summary_lines(result: DrillResult) -> list[str]:
    m = result.incident.manifest
    lines = [
        f"Incident {m.id} ({m.title}), mode {result.mode}: {'PASSED' if result.ok else 'FAILED'}",
        f"  choices shuffled with seed {result.seed}",
        f"  time to page:      {_dur(result.since_inject(result.paged_at))} after injection",
        f"  time to diagnose:  {_dur(result.time_to_diagnose)} after the page",
        f"  time to mitigate:  {_dur(result.time_to_mitigate)} from the page to recovery",
        f"  time to recover:   {_dur(result.time_to_recover)} after the first mitigation",
    ]
    for attempt in result.attempts:
        lines.append(
            f"  mitigation {attempt.mitigation.id}: {'correct' if attempt.mitigation.correct else 'wrong'}, "
            f"{'recovered' if attempt.recovered else 'no recovery'}"
        )
    if result.signature_at_page:
        lines.append("  signature at the page:")
        checks = {c.name: c for c in [*m.signature.anomalous, *m.signature.normal]}
        for name, value in result.signature_at_page.items():
            lines.append(f"    {name}: {format_value(value, checks[name].unit)}")
    for r in result.signature:
        lines.append(
            f"  signature {r.kind}: {r.check.describe()} -> {'ok' if r.ok else 'MISBEHAVED'} "
            f"(worst {format_value(r.worst, r.check.unit)}{_margin(r)})"
            + (f" [{r.error}]" if r.error else "")
        )
    for alert in result.alerts:
        expected = m.alerts.verdict(alert.name)
        lines.append(
            f"  alert {alert.name} ({alert.severity or 'no severity'}, {expected}) fired "
            f"{_dur(result.since_inject(alert.first_at))} after injection"
        )
    if result.matrix:
        row = ", ".join(f"{i}: {'yes' if ok else 'no'}" for i, ok in result.matrix.items())
        lines.append(f"  matrix (does this run satisfy the signature of ...): {row}")
    if result.score is not None:
        parts = ", ".join(f"{k} {v:+g}" for k, v in result.score.parts.items())
        lines.append(
            f"  score: {result.score.total:g}/100 ({parts}); hints used: {result.hints_used}"
        )
    for failure in result.failures:
        lines.append(f"  FAILURE: {failure}")
    return lines


def svg_chart(
    series: dict[str, list[tuple[float, float]]],
    start: float,
    end: float,
    marks: list[tuple[float, str]],
    unit: str = "",
    width: int = 560,
    height: int = 200,
) -> str:
    """A small line chart as inline SVG: one polyline per series, vertical lines for ``marks``."""
    pad_l, pad_r, pad_t, pad_b = 56, 10, 10, 24
    values = [v for s in series.values() for _, v in s if not math.isnan(v) and not math.isinf(v)]
    top = max(values) if values else 1.0
    top = top * 1.1 if top > 0 else 1.0
    span = max(end - start, 1.0)

    def x(t: float) -> float:
        return pad_l + (t - start) / span * (width - pad_l - pad_r)

    def y(v: float) -> float:
        return height - pad_b - (v / top) * (height - pad_t - pad_b)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
        f'<rect x="{pad_l}" y="{pad_t}" width="{width - pad_l - pad_r}" height="{height - pad_t - pad_b}" fill="#fafafa" stroke="#ccc"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        value = top * frac
        parts.append(
            f'<text x="{pad_l - 4}" y="{y(value) + 4:.1f}" font-size="10" text-anchor="end">{value:.3g}{html.escape(unit if unit != "ratio" else "")}</text>'
        )
    parts.append(f'<text x="{pad_l}" y="{height - 6}" font-size="10">{_clock(start)}</text>')
    parts.append(
        f'<text x="{width - pad_r}" y="{height - 6}" font-size="10" text-anchor="end">{_clock(end)}</text>'
    )
    for ts, label in marks:
        if start <= ts <= end:
            parts.append(
                f'<line x1="{x(ts):.1f}" x2="{x(ts):.1f}" y1="{pad_t}" y2="{height - pad_b}" stroke="#e377c2" stroke-dasharray="4 3"/>'
                f'<text x="{x(ts) + 3:.1f}" y="{pad_t + 10}" font-size="10" fill="#e377c2">{html.escape(label)}</text>'
            )
    for i, (name, points) in enumerate(sorted(series.items())):
        coords = " ".join(
            f"{x(t):.1f},{y(v):.1f}" for t, v in points if not math.isnan(v) and not math.isinf(v)
        )
        if coords:
            colour = COLOURS[i % len(COLOURS)]
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{coords}"><title>{html.escape(name)}</title></polyline>'
            )
    if not values:
        parts.append(
            f'<text x="{width / 2}" y="{height / 2}" font-size="12" text-anchor="middle">no data</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _marks(result: DrillResult) -> list[tuple[float, str]]:
    marks = []
    for ts, label in (
        (result.injected_at, "fault"),
        (result.paged_at, "page"),
        (result.first_mitigation_at, "mitigation"),
        (result.recovered_at, "recovered"),
    ):
        if ts is not None:
            marks.append((ts, label))
    return marks


def _renderer_images(
    result: DrillResult, settings: Settings, out_dir: Path, say: Callable[[str], None]
) -> list[Path]:
    dashboard = result.incident.manifest.report.dashboard
    if not dashboard:
        return []
    try:
        from sandbox.render import render_dashboard  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return []
    try:
        produced: Any = render_dashboard(
            dashboard,
            prometheus_url=settings.prometheus_url,
            start=result.started_at,
            end=result.ended_at,
            annotations=[{"time": t, "text": label} for t, label in _marks(result)],
            out_dir=out_dir,
        )
    except Exception as exc:
        say(f"  dashboard renderer failed: {type(exc).__name__}: {exc}")
        return []
    paths = produced if isinstance(produced, (list, tuple)) else [produced]
    return [Path(p) for p in paths if str(p).endswith(".png")]


def _html(result: DrillResult, charts: list[tuple[str, str]], images: list[Path]) -> str:
    m = result.incident.manifest
    esc = html.escape
    rows = "".join(
        f"<tr><td>{_clock(e['ts'])}</td><td>{esc(e['kind'])}</td>"
        f"<td><code>{esc(str({k: v for k, v in e.get('detail', {}).items() if k != 'incident'}))[:300]}</code></td></tr>"
        for e in result.events
    )
    sig_rows = "".join(
        f"<tr><td>{r.kind}</td><td>{esc(r.check.describe())}</td><td><code>{esc(r.check.expr)}</code></td>"
        f"<td>{format_value(result.signature_at_page.get(r.check.name), r.check.unit)}</td>"
        f"<td>{format_value(r.worst, r.check.unit)}</td><td class={'ok' if r.ok else 'bad'}>{'ok' if r.ok else 'misbehaved'}</td></tr>"
        for r in result.signature
    )
    diag = ""
    if result.diagnosis:
        diag = (
            "<h2>Diagnosis</h2><ul>"
            + "".join(
                f"<li><b>{esc(g.question)}</b><br>answered: {esc(g.chosen_text)} ({g.points:g})<br>"
                f"<i>{esc(g.explanation)}</i><br>best: {esc(g.best)}</li>"
                for g in result.diagnosis.questions
            )
            + "</ul>"
        )
    mitigations = "".join(
        f"<li><b>{esc(mit.title)}</b> ({'correct' if mit.correct else 'tempting but wrong'}"
        f"{', reference' if mit.reference else ''})<br>{esc(mit.why)}</li>"
        for mit in m.mitigations
    )
    attempts = "".join(
        f"<li>{esc(a.mitigation.title)}: {'recovered' if a.recovered else 'no recovery'}</li>"
        for a in result.attempts
    )
    alerts = "".join(
        f"<li>{esc(a.name)} ({esc(a.severity)}) at {_clock(a.first_at)}"
        f"{'' if m.alerts.verdict(a.name) != 'NOT expected' else ' <b class=bad>not expected</b>'}"
        f"{' (tolerated)' if m.alerts.verdict(a.name) == 'tolerated' else ''}</li>"
        for a in result.alerts
    )
    matrix_head = "".join(f"<th>{esc(i)}</th>" for i in result.matrix)
    matrix_row = "".join(
        f"<td class={'ok' if ok == (i == m.id) else 'bad'}>{'yes' if ok else 'no'}</td>"
        for i, ok in result.matrix.items()
    )
    imgs = "".join(
        f'<figure><img alt="{esc(p.stem)}" src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}"></figure>'
        for p in images
    )
    chart_html = "".join(
        f"<figure><figcaption>{esc(title)}</figcaption>{svg}</figure>" for title, svg in charts
    )
    summary = "\n".join(esc(line) for line in summary_lines(result))
    notes = esc(result.incident.notes)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Drill report: {esc(m.id)}</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;font-size:13px}} td,th{{border:1px solid #ddd;padding:3px 6px;vertical-align:top}}
.ok{{color:#2ca02c}} .bad{{color:#d62728;font-weight:bold}} figure{{display:inline-block;margin:6px}}
figcaption{{font-size:13px;font-weight:bold}} pre{{background:#f6f6f6;padding:1em;white-space:pre-wrap}}
img{{max-width:100%}}
</style></head><body>
<h1>{esc(m.title)} <small>({esc(m.id)}, {esc(m.difficulty)})</small></h1>
<p>{"<b class=ok>PASSED</b>" if result.ok else "<b class=bad>FAILED</b>"}; mode {result.mode};
concepts: {esc(", ".join(m.concepts))}</p>
<pre>{summary}</pre>
<h2>The page</h2><pre>{esc(m.page)}</pre>
<h2>Key panels</h2>{chart_html}{imgs}
<h2>Signature</h2><table><tr><th>kind</th><th>check</th><th>PromQL</th><th>at page</th><th>worst</th><th>verdict</th></tr>{sig_rows}</table>
{diag}
<h2>Alerts that fired</h2><ul>{alerts or "<li>none</li>"}</ul>
<h2>Incident matrix</h2><p>Does this run's window satisfy the signature of each incident?
Only its own should say yes.</p><table><tr>{matrix_head}</tr><tr>{matrix_row}</tr></table>
<h2>Mitigations</h2><p>Applied:</p><ul>{attempts or "<li>none</li>"}</ul><p>All options:</p><ul>{mitigations}</ul>
<h2>Timeline</h2><table><tr><th>time</th><th>event</th><th>detail</th></tr>{rows}</table>
<h2>Notes</h2><pre>{notes}</pre>
</body></html>
"""


def write_report(
    result: DrillResult,
    settings: Settings,
    prom: PrometheusClient,
    out_dir: Path | None,
    say: Callable[[str], None] = print,
) -> list[Path]:
    """Print the summary, write ``report.html`` and the outcome's ``result.json`` (returns the
    files written)."""
    for line in summary_lines(result):
        say(line)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(result.started_at))
    out_dir = out_dir or settings.run_dir / "reports" / f"{result.incident.id}-{stamp}"
    out_dir.mkdir(parents=True, exist_ok=True)
    start = (result.injected_at or result.started_at) - 120
    end = result.ended_at or time.time()
    step = max(settings.scrape_interval_s, (end - start) / 300)
    charts = []
    for panel in result.incident.manifest.report.panels:
        try:
            series = {
                label_key(s.labels): s.points for s in prom.range(panel.expr, start, end, step)
            }
        except PrometheusError as exc:
            say(f"  panel {panel.title!r}: {exc}")
            series = {}
        charts.append((panel.title, svg_chart(series, start, end, _marks(result), panel.unit)))
    images = _renderer_images(result, settings, out_dir, say)
    path = out_dir / "report.html"
    path.write_text(_html(result, charts, images))
    outcome = DrillOutcome.of(result).write(out_dir)
    say(f"report: {path}")
    return [path, outcome, *images]
