"""The console's HTML: one frame (navigation, styles, scripts) around each page's body.

Dashboards are drawn by ``static/console.js`` from the JSON API; the traces, waterfall and drill
pages are plain HTML written here, usable without any script.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from sandbox.console.assets import chart_library
from sandbox.console.traces import RequestFilter
from sandbox.render.model import DashboardSpec

__all__ = [
    "dashboard_page",
    "drill_page",
    "error_page",
    "index_page",
    "trace_page",
    "traces_page",
]

_e = html.escape

_PHASE_COLOURS = {
    "admission": "#eab839",
    "retrieval": "#ba43a9",
    "network": "#1f78c1",
    "upstream.send": "#1f78c1",
    "upstream.first_token": "#e24d42",
    "upstream.stream": "#7eb26d",
    "postprocess": "#6ed0e0",
    "engine.queue": "#cca300",
    "engine.prefill": "#ef843c",
    "engine.decode": "#508642",
    "llm_request": "#705da0",
}


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


def _frame(title: str, body: str, *, scripts: bool = False, refresh_s: float | None = None) -> str:
    head = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{_e(title)} · sandbox console</title>",
        "<link rel='stylesheet' href='/static/console.css'>",
    ]
    if refresh_s:
        head.append(f"<meta http-equiv='refresh' content='{int(refresh_s)}'>")
    if scripts:
        if chart_library() is not None:
            head.append("<link rel='stylesheet' href='/vendor/uPlot.min.css'>")
            head.append("<script src='/vendor/uPlot.min.js'></script>")
        head.append("<script src='/static/console.js' defer></script>")
    nav = (
        "<header class='top'><a class='brand' href='/'>sandbox console</a>"
        "<nav><a href='/'>Dashboards</a><a href='/traces'>Traces</a>"
        "<a href='/drill' id='nav-drill'>Drill</a></nav></header>"
    )
    missing = (
        ""
        if not scripts or chart_library() is not None
        else "<div class='banner error'>The chart library is not installed: run "
        "<code>make setup</code> (it installs the npm package uplot into .vendor/).</div>"
    )
    return "".join(head) + f"</head><body>{nav}{missing}<main>{body}</main></body></html>"


def error_page(status: int, detail: str) -> str:
    what = "Not found" if status == 404 else f"Error {status}"
    body = (
        f"<h1>{what}</h1><p class='error-detail'>{_e(detail)}</p>"
        "<p><a href='/'>All dashboards</a> · <a href='/traces'>Recent requests</a></p>"
    )
    return _frame(what, body)


def index_page(
    dashboards: Sequence[tuple[str, DashboardSpec]], drill: dict[str, Any] | None
) -> str:
    items = "".join(
        f"<li><a href='/d/{_e(spec.uid)}'>{_e(spec.title)}</a>"
        f"<span class='muted'> · {len(spec.panels)} panels · {_e(spec.description)}</span></li>"
        for _, spec in dashboards
    )
    page = ""
    if drill and drill.get("running") and drill.get("page"):
        page = (
            f"<div class='banner page'>PAGE: <b>{_e(drill['page']['alert'])}</b> · "
            f"<a href='/drill'>the drill's page, timeline and hints</a></div>"
        )
    body = f"{page}<h1>Dashboards</h1><ul class='list'>{items}</ul>"
    return _frame("Dashboards", body)


def dashboard_page(
    name: str, spec: DashboardSpec, prometheus_url: str, refresh_s: float, layout: dict[str, Any]
) -> str:
    # The layout travels with the page, so the script asks for data at once: one round trip less.
    config = {
        "uid": spec.uid,
        "refresh_s": refresh_s,
        "prometheus": prometheus_url,
        "layout": layout,
    }
    body = (
        f"<div id='dashboard' data-config='{_e(json.dumps(config))}'>"
        f"<div class='bar'><h1>{_e(spec.title)}</h1>"
        "<span class='controls'>"
        "<select id='range' aria-label='time range'>"
        "<option value='now-5m'>Last 5 minutes</option>"
        "<option value='now-15m'>Last 15 minutes</option>"
        "<option value='now-30m'>Last 30 minutes</option>"
        "<option value='drill' disabled>The drill's window</option>"
        "</select>"
        "<label><input type='checkbox' id='auto' checked> refresh</label>"
        "<span id='status' class='muted'></span></span></div>"
        f"<p class='muted'>{_e(spec.description)}</p>"
        "<div id='banner'></div><div id='drill-banner'></div>"
        "<div id='grid' class='grid'></div>"
        "<h2>Annotations in this range</h2><ul id='marks' class='marks'></ul>"
        "</div>"
    )
    return _frame(spec.title, body, scripts=True)


def _filter_form(options: dict[str, list[str]], wanted: RequestFilter) -> str:
    def select(name: str, values: list[str], current: str, extra: Sequence[str] = ()) -> str:
        choices = ["", *extra, *values]
        opts = "".join(
            f"<option value='{_e(v)}'{' selected' if v == current else ''}>{_e(v or 'any')}</option>"
            for v in dict.fromkeys(choices)
        )
        return f"<label>{name} <select name='{name}'>{opts}</select></label>"

    return (
        "<form class='filters' method='get' action='/traces'>"
        + select("tenant", options["tenant"], wanted.tenant)
        + select("status", options["status"], wanted.status, ("error", "2xx", "4xx", "5xx"))
        + select("version", options["version"], wanted.version)
        + f"<label>min ms <input name='min_ms' type='number' min='0' step='any' value='{wanted.min_ms:g}'></label>"
        + "<button type='submit'>Filter</button></form>"
    )


def traces_page(
    rows: list[dict[str, Any]],
    options: dict[str, list[str]],
    wanted: RequestFilter,
    paged_tenant: str,
) -> str:
    note = (
        f"<p class='banner page'>Paged: tenant <b>{_e(paged_tenant)}</b>'s requests come first.</p>"
        if paged_tenant
        else ""
    )
    widest = max((r["duration_ms"] for r in rows), default=1.0) or 1.0
    lines = []
    for r in rows:
        phases = "".join(
            f"<span class='seg' title='{_e(k)} {v:.1f} ms' style='width:{100 * v / widest:.2f}%;"
            f"background:{_PHASE_COLOURS.get(k, '#999')}'></span>"
            for k, v in r["phases_ms"].items()
            if k
            in _PHASE_COLOURS  # "upstream" spans the phases after it: drawn, it would count twice
        )
        status = str(r["status"])
        bad = r["error"] or (status.isdigit() and int(status) >= 400)
        lines.append(
            f"<tr class='{'bad' if bad else ''}'><td>{_clock(r['start'])}</td>"
            f"<td><a class='trace-link' href='/traces/{r['trace_id']}'>{r['trace_id'][:12]}…</a></td>"
            f"<td>{_e(r['tenant'])}</td><td>{_e(r['version'])}</td><td>{_e(status)}</td>"
            f"<td class='num'>{r['duration_ms']:.1f}</td><td class='bars'>{phases}</td></tr>"
        )
    table = (
        "<table class='requests'><thead><tr><th>ended</th><th>trace</th><th>tenant</th>"
        "<th>version</th><th>status</th><th>ms</th><th>phases (gateway)</th></tr></thead>"
        f"<tbody>{''.join(lines)}</tbody></table>"
        if rows
        else "<p class='empty'>No request matches (the trace sink keeps the last hour).</p>"
    )
    legend = "".join(
        f"<span class='key'><i style='background:{c}'></i>{_e(k)}</span>"
        for k, c in _PHASE_COLOURS.items()
        if "." not in k and k != "llm_request"
    )
    body = (
        f"<h1>Recent requests</h1>{note}{_filter_form(options, wanted)}"
        f"<p class='muted'>Slowest first. {legend}</p>{table}"
    )
    return _frame("Traces", body)


def trace_page(view: dict[str, Any]) -> str:
    total = max(view["duration_ms"], 1e-6)
    rows = []
    for row in view["rows"]:
        left = 100 * row["start_ms"] / total
        width = max(0.3, 100 * row["duration_ms"] / total)
        colour = "#e02f44" if row["error"] else _PHASE_COLOURS.get(row["name"], "#8ab8ff")
        rows.append(
            f"<tr class='span-row'><td style='padding-left:{8 + 16 * row['depth']}px'>{_e(row['name'])}</td>"
            f"<td class='muted'>{_e(row['service'])}</td><td class='num'>{row['start_ms']:.1f}</td>"
            f"<td class='num'>{row['duration_ms']:.1f}</td><td class='track'>"
            f"<span class='bar' style='left:{min(left, 99.7):.2f}%;width:{min(width, 100 - min(left, 99.7)):.2f}%;"
            f"background:{colour}' title='{_e(row['name'])} {row['duration_ms']:.1f} ms'></span></td></tr>"
        )
    attrs = "".join(
        f"<details><summary>{_e(a.get('name', sid))} <span class='muted'>{_e(sid)}</span></summary>"
        + "<dl>"
        + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in sorted(a.items()) if k != "name")
        + "</dl></details>"
        for sid, a in view["attributes"].items()
    )
    body = (
        f"<h1>{_e(view['name'])} <span class='muted'>{view['duration_ms']:.1f} ms</span></h1>"
        f"<p class='muted'>trace <code>{_e(view['trace_id'])}</code> · status {_e(str(view['status']))}"
        f" · tenant {_e(view['tenant'] or '-')} · version {_e(view['version'] or '-')} · "
        f"ended {_clock(view['start'] + view['duration_ms'] / 1000)} · "
        "<a href='/traces'>all requests</a></p>"
        "<table class='waterfall' id='waterfall'><thead><tr><th>span</th><th>service</th>"
        "<th>start ms</th><th>ms</th><th class='track'>timeline</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table><h2>Attributes</h2>{attrs}"
    )
    return _frame(f"trace {view['trace_id'][:12]}", body)


def drill_page(view: dict[str, Any] | None, prometheus_url: str) -> str:
    if view is None:
        body = (
            "<h1>No drill</h1><p>No drill has run in this run directory. Start one in a terminal: "
            "<code>make incident INCIDENT=random</code>; its page, timeline and hints show here.</p>"
        )
        return _frame("Drill", body)
    page = view.get("page")
    running = view.get("running")
    window = view.get("window", {})
    range_q = urlencode({"from": window.get("from", ""), "to": window.get("to", "now")})
    if page:
        annotations = page.get("annotations", {})
        link = page.get("link") or f"/d/sandbox-overview?{range_q}"
        local = "/d/" + link.split("/d/", 1)[1] if "/d/" in link else link
        head = (
            f"<section class='page-card'><h2>PAGE: {_e(page['alert'])}</h2>"
            f"<p><b>{_e(annotations.get('summary', ''))}</b></p>"
            f"<p>{_e(annotations.get('description', ''))}</p>"
            f"<pre class='page-text'>{_e(page.get('text', ''))}</pre>"
            f"<p class='links'><a id='page-dashboard' href='{_e(local)}'>the page's dashboard, from the fault on</a>"
            f" · <a href='/traces'>slowest requests</a>"
            + (
                f" · <a href='{_e(annotations['runbook_url'])}'>runbook</a>"
                if annotations.get("runbook_url", "").startswith(("http", "/"))
                else ""
            )
            + f" · <a href='{_e(prometheus_url)}/alerts'>Prometheus alerts</a></p></section>"
        )
    else:
        head = (
            "<section class='page-card quiet'><h2>No page yet</h2><p>The drill is at step "
            f"<b>{_e(str(view.get('step')))}</b>; the page shows here when Alertmanager sends it.</p></section>"
        )
    title = view.get("title")
    state = "running" if running else ("passed" if view.get("ok") else "ended")
    heading = f"Drill {_e(state)}" + (f": {_e(str(title))}" if title else "")
    dashboards = " · ".join(
        f"<a href='/d/{uid}?{range_q}'>{label}</a>"
        for uid, label in (
            ("sandbox-overview", "overview"),
            ("sandbox-engine", "engine"),
            ("sandbox-rag", "RAG"),
            ("sandbox-rollout", "rollout"),
            ("sandbox-capacity", "capacity"),
        )
    )
    events = "".join(
        f"<li><span class='muted'>{_clock(e['time'])}</span> <b>{_e(e['kind'].removeprefix('drill.'))}</b>"
        + (
            f" <span class='muted'>{_e(json.dumps(e['detail'], default=str))}</span>"
            if e["detail"]
            else ""
        )
        + "</li>"
        for e in view.get("timeline", [])
    )
    hints = "".join(f"<li>{_e(h)}</li>" for h in view.get("hints_given", []))
    ask = (
        "<form method='post' action='/drill/hint'><button id='hint' type='submit'>"
        f"Give me a hint ({view.get('hints_left', 0)} left)</button></form>"
        if running and page and view.get("hints_left", 0)
        else ""
    )
    body = (
        f"<h1>{heading}</h1>{head}"
        f"<p>Dashboards over the drill's window: {dashboards}</p>"
        f"<div class='cols'><section><h2>Timeline so far</h2><ul class='marks'>{events}</ul></section>"
        f"<section id='hints'><h2>Hints</h2><ol>{hints}</ol>{ask}"
        "<p class='muted'>Answer the diagnosis and choose mitigations in the drill's terminal; "
        "hints taken here count like hints taken there.</p></section></div>"
    )
    return _frame("Drill", body, refresh_s=10 if running else None)
