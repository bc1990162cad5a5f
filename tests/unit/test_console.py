"""The console without a browser: the translation of panels into queries and series, its API
against a real (throwaway) Prometheus, the traces and drill views from files, and bad input."""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from sandbox.console.app import ConsoleConfig, _timeline_marks, create_app
from sandbox.console.component import console_component
from sandbox.console.dashboards import Catalog, parse_range
from sandbox.console.drill import drill_view
from sandbox.console.links import dashboard_link, page_links
from sandbox.console.traces import SpanIndex
from sandbox.drill.live import console_hints, read_live, write_live
from sandbox.render.model import DASHBOARD_DIR, load_dashboard
from sandbox.render.query import exemplar_metrics, prometheus_graph_url
from sandbox.settings import load_settings
from sandbox.stack import default_components
from sandbox.timeline import record as record_event
from sandbox.tracesink.store import spans_path
from tests.support import free_port, poll_until, throwaway_prometheus

TRACE = "0af7651916cd43dd8448eb211c80319c"

# A dashboard whose queries have data on a Prometheus that scrapes only itself.
SELF_DASHBOARD = {
    "uid": "self-test",
    "title": "Prometheus itself",
    "description": "queries with data on a self-scraping Prometheus",
    "panels": [
        {
            "id": 1,
            "type": "stat",
            "title": "targets up",
            "gridPos": {"x": 0, "y": 0, "w": 6, "h": 4},
            "fieldConfig": {
                "defaults": {
                    "unit": "short",
                    "thresholds": {
                        "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}]
                    },
                }
            },
            "targets": [{"refId": "A", "expr": "sum(up)", "legendFormat": "up"}],
        },
        {
            "id": 2,
            "type": "timeseries",
            "title": "samples scraped",
            "gridPos": {"x": 6, "y": 0, "w": 18, "h": 8},
            "fieldConfig": {"defaults": {"unit": "short"}},
            "targets": [
                {
                    "refId": "A",
                    "expr": 'scrape_samples_scraped{job=~"$job"}',
                    "legendFormat": "{{job}}",
                },
                {"refId": "B", "expr": "absent_metric_that_has_no_data", "legendFormat": "none"},
            ],
        },
    ],
    "templating": {"list": [{"name": "job", "allValue": ".*"}]},
    "annotations": {"list": []},
}


def _span(
    name: str, span_id: str, parent: str, start: float, end: float, kind: int = 1, **attrs: Any
) -> dict[str, Any]:
    return {
        "traceId": TRACE,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": name,
        "kind": kind,
        "startTimeUnixNano": str(int(start * 1e9)),
        "endTimeUnixNano": str(int(end * 1e9)),
        "attributes": [
            {"key": k, "value": {"doubleValue": v} if isinstance(v, float) else {"stringValue": v}}
            for k, v in attrs.items()
        ],
    }


def _export(service: str, *spans: dict[str, Any]) -> str:
    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                    },
                    "scopeSpans": [{"spans": list(spans)}],
                }
            ]
        }
    )


def _write_request(run_dir: Path, now: float) -> None:
    path = spans_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    gateway = _export(
        "sandbox-gateway",
        _span(
            "POST /v1/completions",
            "a" * 16,
            "",
            now - 2.0,
            now,
            kind=2,
            **{"sandbox.tenant": "chat", "sandbox.version": "stable"},
        ),
        _span("admission", "b" * 16, "a" * 16, now - 2.0, now - 1.9),
        _span("upstream", "c" * 16, "a" * 16, now - 1.9, now - 0.1),
    )
    vllm = _export(
        "vllm",
        _span(
            "llm_request",
            "d" * 16,
            "c" * 16,
            now - 1.8,
            now - 0.2,
            **{
                "gen_ai.latency.time_in_queue": 0.5,
                "gen_ai.latency.time_in_model_prefill": 0.3,
                "gen_ai.latency.time_in_model_decode": 0.7,
            },
        ),
    )
    path.write_text(gateway + "\n" + vllm + "\n")


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with throwaway_prometheus(tmp_path_factory.mktemp("prom"), scrape_self=True) as url:
        yield url


@pytest.fixture
def dashboards(tmp_path: Path) -> Path:
    directory = tmp_path / "dashboards"
    directory.mkdir()
    (directory / "self.json").write_text(json.dumps(SELF_DASHBOARD))
    for name in ("overview", "engine"):  # real ones too: every query must be accepted
        (directory / f"{name}.json").write_text((DASHBOARD_DIR / f"{name}.json").read_text())
    return directory


def _client(prometheus_url: str, run_dir: Path, dashboards_dir: Path) -> TestClient:
    config = ConsoleConfig(prometheus_url, run_dir, dashboards_dir=dashboards_dir)
    return TestClient(create_app(config))


# -- the translation -----------------------------------------------------------------------------


def test_time_ranges_take_grafana_forms() -> None:
    now = 1_800_000_000.0
    span = parse_range("now-5m", "now", now)
    assert (span.start, span.end, span.live) == (now - 300, now, True)
    fixed = parse_range(str(int((now - 600) * 1000)), str(int(now * 1000)), now)
    assert (fixed.start, fixed.end, fixed.live) == (now - 600, now, False)
    assert parse_range("now-10s", None, now).start == now - 60  # at least a minute
    with pytest.raises(ValueError):
        parse_range("yesterday", None, now)


def test_gateway_histograms_give_exemplar_metrics_and_vllm_ones_do_not() -> None:
    _, overview = load_dashboard("overview")
    by_title = {p.title: p for p in overview.panels}
    ttft = next(p for t, p in by_title.items() if t.startswith("Time to first token"))
    assert exemplar_metrics(ttft) == ("sandbox_gateway_time_to_first_token_seconds_bucket",)
    tpot = next(p for t, p in by_title.items() if t.startswith("Time per output token"))
    assert exemplar_metrics(tpot) == ()
    _, rag = load_dashboard("rag")
    retrieval = next(p for p in rag.panels if p.title.startswith("Retrieval phase"))
    assert exemplar_metrics(retrieval) == (
        'sandbox_gateway_phase_seconds_bucket{phase="retrieval"}',
    )


def test_panels_link_to_their_query_in_prometheus() -> None:
    url = prometheus_graph_url("http://127.0.0.1:9090", 'sum(rate(x{a=~".*"}[1m]))', 900)
    assert url.startswith("http://127.0.0.1:9090/graph?g0.expr=sum%28rate%28x%7Ba%3D~%22.%2A%22")
    assert "g0.range_input=900s" in url


def test_catalog_finds_dashboards_by_uid_and_by_name() -> None:
    catalog = Catalog()
    assert catalog.get("sandbox-overview") == catalog.get("overview")
    assert catalog.get("nope") is None
    assert len(catalog.all()) == 5


def test_drill_links_point_at_the_console_with_the_range() -> None:
    settings = load_settings(console_port=3123)
    link = dashboard_link(settings, "/d/sandbox-rag?viewPanel=1", 1000.0, None)
    assert link == "http://127.0.0.1:3123/d/sandbox-rag?viewPanel=1&from=1000000&to=now"
    assert dashboard_link(settings, None).endswith("/d/sandbox-overview")


def test_the_console_is_a_stack_component_on_localhost() -> None:
    settings = load_settings(console_port=free_port())
    component = next(c for c in default_components() if c.name == "console")
    spec = console_component().spec(settings)
    assert spec.argv[spec.argv.index("--host") + 1] == "127.0.0.1"
    assert spec.port == settings.console_port
    assert component.url(settings) == f"http://127.0.0.1:{settings.console_port}"


# -- the API against a real Prometheus ----------------------------------------------------------


def test_dashboard_data_has_every_panel_and_series_where_there_is_data(
    prometheus: str, tmp_path: Path, dashboards: Path
) -> None:
    poll_until(  # a few scrapes, so that the range's points after the first one have data
        lambda: httpx.get(
            f"{prometheus}/api/v1/query", params={"query": "count_over_time(up[1m]) >= 4"}
        ).json()["data"]["result"],
        "Prometheus' first scrapes of itself",
        30,
    )
    client = _client(prometheus, tmp_path, dashboards)
    layout = client.get("/api/d/self-test").json()
    assert [p["id"] for p in layout["panels"]] == [1, 2]
    assert "/graph?g0.expr=" in layout["panels"][1]["queries"][0]["prometheus"]
    assert 'job=~".*"' in layout["panels"][1]["queries"][0]["expr"]  # variables substituted
    data = client.get("/api/d/self-test/data", params={"from": "now-5m"}).json()
    assert data["prometheus_error"] is None
    panels = {p["id"]: p for p in data["panels"]}
    assert panels[1]["series"][0]["name"] == "up"
    assert any(v == 1 for v in panels[1]["series"][0]["values"])
    names = [s["name"] for s in panels[2]["series"]]
    assert names == ["prometheus"]  # the query without data adds no series, and no error
    assert all(len(s["values"]) == len(data["times"]) for s in panels[2]["series"])
    for name in ("overview", "engine"):
        answer = client.get(f"/api/d/{name}/data").json()
        assert not [e for p in answer["panels"] for e in p["errors"]], name


def test_dashboard_page_loads_its_script_and_the_local_chart_library(
    prometheus: str, tmp_path: Path, dashboards: Path
) -> None:
    client = _client(prometheus, tmp_path, dashboards)
    page = client.get("/d/sandbox-overview?from=now-5m&viewPanel=7")
    assert page.status_code == 200
    assert "/static/console.js" in page.text
    assert "http" not in page.text.split("<body>")[0].replace("http-equiv", "")  # no CDN
    assert client.get("/static/console.js").status_code == 200


def test_prometheus_down_gives_a_banner_not_a_blank_page(tmp_path: Path, dashboards: Path) -> None:
    client = _client(f"http://127.0.0.1:{free_port()}", tmp_path, dashboards)
    assert client.get("/d/self-test").status_code == 200
    data = client.get("/api/d/self-test/data").json()
    assert "does not answer" in data["prometheus_error"]
    assert data["panels"] == []


def test_unknown_dashboard_and_trace_give_a_clear_404(tmp_path: Path, dashboards: Path) -> None:
    client = _client(f"http://127.0.0.1:{free_port()}", tmp_path, dashboards)
    page = client.get("/d/no-such-board")
    assert page.status_code == 404 and "text/html" in page.headers["content-type"]
    assert "no dashboard &#x27;no-such-board&#x27;" in page.text and "self-test" in page.text
    assert client.get("/api/d/no-such-board").json()["error"].startswith("no dashboard")
    assert client.get(f"/traces/{'f' * 32}").status_code == 404
    missing = client.get("/traces/not-a-trace")
    assert missing.status_code == 404 and "32 hex digits" in missing.text
    assert client.get("/api/d/self-test/data", params={"from": "sometime"}).status_code == 400


# -- traces and the drill, from the run directory -----------------------------------------------


def test_traces_are_listed_filtered_and_drawn_as_a_waterfall(tmp_path: Path) -> None:
    _write_request(tmp_path, time.time())
    client = _client(f"http://127.0.0.1:{free_port()}", tmp_path, Path("/nonexistent"))
    rows = client.get("/api/traces").json()["requests"]
    assert [r["trace_id"] for r in rows] == [TRACE]
    assert rows[0]["tenant"] == "chat" and rows[0]["duration_ms"] == pytest.approx(2000, abs=1)
    assert client.get("/api/traces", params={"tenant": "batch"}).json()["requests"] == []
    assert client.get("/api/traces", params={"min_ms": 5000}).json()["requests"] == []
    assert len(client.get("/api/traces", params={"version": "stable"}).json()["requests"]) == 1
    view = client.get(f"/api/traces/{TRACE}").json()
    names = [r["name"] for r in view["rows"]]
    assert names[:4] == ["POST /v1/completions", "admission", "upstream", "llm_request"]
    assert names[4:7] == ["engine.queue", "engine.prefill", "engine.decode"]
    page = client.get("/traces")
    assert f"/traces/{TRACE}" in page.text
    assert "engine.prefill" in client.get(f"/traces/{TRACE}").text


def test_span_index_reads_only_what_was_appended(tmp_path: Path) -> None:
    _write_request(tmp_path, time.time())
    index = SpanIndex(spans_path(tmp_path), min_interval_s=0)
    assert len(index.requests()) == 1
    with spans_path(tmp_path).open("a") as out:
        out.write('{"resourceSpans": [')  # a line still being written
    assert len(index.requests()) == 1
    trace = index.trace(TRACE)
    assert trace is not None and len(trace.spans) == 4


def test_drill_page_shows_the_page_and_gives_hints_counted_by_the_drill(tmp_path: Path) -> None:
    now = time.time()
    client = _client(f"http://127.0.0.1:{free_port()}", tmp_path, Path("/nonexistent"))
    assert "No drill" in client.get("/drill").text
    state = {
        "incident": "slow-retrieval",
        "title": "Slow retrieval",
        "step": "paged",
        "started_at": now - 100,
        "injected_at": now - 60,
        "paged_at": now - 5,
        "ended_at": None,
        "page": {
            "alert": "TimeToFirstTokenSLOBreach",
            "labels": {"tenant": "chat"},
            "annotations": {"summary": "TTFT p99 over 2 s", "description": "for 1 minute"},
            "text": "Users of the chat tenant say answers start slowly.",
            "link": "http://127.0.0.1:3000/d/sandbox-overview?viewPanel=7&from=1&to=now",
        },
    }
    write_live(tmp_path, state)
    record_event(
        tmp_path, "drill.inject", {"incident": "slow-retrieval", "faults": ["x"]}, now - 60
    )
    page = client.get("/drill").text
    assert "TimeToFirstTokenSLOBreach" in page and "answers start slowly" in page
    assert "/d/sandbox-overview?viewPanel=7&amp;from=1&amp;to=now" in page
    assert "Slow retrieval" not in page  # a blind drill must not name itself while it runs
    assert "faults" not in page  # nor its fault through the timeline's details
    hint = client.post("/api/drill/hint").json()["hint"]
    assert hint and html.escape(hint) in client.get("/drill").text
    assert console_hints(tmp_path, now - 100) == 1
    assert client.get("/api/traces").json()["paged_tenant"] == "chat"
    # An interactive drill that has not revealed its scenario hides when the fault came and the
    # changes made before it, on the drill page and as dashboard marks; the page stays.
    record_event(tmp_path, "fault.inject", {"change": "engine-kv-budget"}, now - 90)
    record_event(tmp_path, "drill.page", {"incident": "slow-retrieval"}, now - 5)
    write_live(tmp_path, {**state, "scenario_shown": False})
    page = client.get("/drill").text
    listed = re.findall(r"<li><span class='muted'>[^<]*</span> <b>([^<]*)</b>", page)
    assert listed == ["page", "hint"], listed  # the hint taken above stays
    marks = [m["text"] for m in _timeline_marks(tmp_path, now - 200, now)]
    assert marks == ["page"]
    write_live(tmp_path, {**state, "scenario_shown": True})
    marks = [m["text"] for m in _timeline_marks(tmp_path, now - 200, now)]
    assert marks == ["fault.inject", "inject", "page"]


def test_the_page_links_the_console_locally_and_grafana_in_compose() -> None:
    local = page_links(
        load_settings(mode="local", console_port=3000), "/d/sandbox-rag?viewPanel=1", 1000.0
    )
    assert (
        local[0]
        == "  dashboard: http://127.0.0.1:3000/d/sandbox-rag?viewPanel=1&from=1000000&to=now"
    )
    assert "http://127.0.0.1:3000/drill" in local[1] and "/traces" in local[1]
    compose = page_links(
        load_settings(mode="compose", console_port=3000), "/d/sandbox-rag?viewPanel=1", 1000.0
    )
    assert compose[0].startswith("  dashboard (Grafana): http://127.0.0.1:3000/d/sandbox-rag?")
    assert "/drill" not in " ".join(compose)


def test_the_drill_publishes_its_page_for_the_console(tmp_path: Path) -> None:
    import random

    from faults import StackContext
    from sandbox.drill.context import DrillContext
    from sandbox.drill.manifest import load_incident
    from sandbox.drill.result import DrillOptions, DrillResult
    from sandbox.drill.webhook import AlertNotification
    from sandbox.promapi import AlertmanagerClient, PrometheusClient
    from sandbox.runtime.local import LocalRuntime

    incident = load_incident("slow-retrieval")
    settings = load_settings(run_dir=tmp_path, console_port=3000, mode="local")
    runtime = LocalRuntime(settings.run_dir)
    drill = DrillContext(  # the hook alone: no stack, no traffic
        incident=incident,
        settings=settings,
        options=DrillOptions(mode="interactive"),
        runtime=runtime,
        say=lambda message: None,
        ctx=StackContext.from_settings(settings, runtime),
        prom=PrometheusClient(settings.prometheus_url),
        alertmanager=AlertmanagerClient(settings.alertmanager_url),
        result=DrillResult(incident, "interactive", time.time() - 100),
        rng=random.Random(0),
    )
    drill.publish("started")
    assert read_live(tmp_path)["page"] is None  # type: ignore[index]
    drill.result.injected_at = time.time() - 60
    drill.result.page = AlertNotification(
        status="firing",
        labels={"alertname": "TimeToFirstTokenSLOBreach"},
        annotations={"dashboard": "/d/sandbox-overview?viewPanel=7", "summary": "slow"},
    )
    drill.publish("paged")
    state = read_live(tmp_path)
    assert state is not None and state["page"]["alert"] == "TimeToFirstTokenSLOBreach"
    start_ms = int((drill.result.injected_at - 120) * 1000)
    assert state["page"]["link"] == (
        f"http://127.0.0.1:3000/d/sandbox-overview?viewPanel=7&from={start_ms}&to=now"
    )
    view = drill_view(tmp_path)
    assert view is not None and view["running"] and "incident" not in view
