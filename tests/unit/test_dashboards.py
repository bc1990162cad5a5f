"""Dashboards as code, recording and alerting rules, Prometheus and Alertmanager configs: all
checked with the real tools (promtool, amtool, a throwaway Prometheus)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from dashboards.generate import DASHBOARDS, generate
from sandbox.components.alertmanager import render_alertmanager_config
from sandbox.components.prometheus import render_prometheus_config
from sandbox.settings import REPO_ROOT
from tests.dashboards_support import (
    DASHBOARD_FILES,
    RULE_FILES,
    all_exprs,
    dashboard_exprs,
    metric_names,
    recorded_names,
    with_variables,
)
from tests.support import isolated_settings, throwaway_prometheus

PROMETHEUS_DIR = REPO_ROOT / "stack" / "prometheus"
UNITS = {"s", "percentunit", "reqps", "short", "suffix: /s", "suffix: tok/s", "suffix: tok"}


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (run `make setup`)")
    return path


def _boards() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in DASHBOARD_FILES}


def _alerts() -> list[tuple[Path, dict[str, Any]]]:
    return [
        (path, rule)
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


# -- Dashboards -----------------------------------------------------------------------------------


def test_checked_in_json_is_what_the_code_generates(tmp_path: Path) -> None:
    assert generate(check=True) == [], "dashboards/*.json is stale: run `make dashboards`"
    # and the generator really writes every dashboard
    assert sorted(generate(tmp_path)) == sorted(DASHBOARDS)
    assert sorted(p.stem for p in DASHBOARD_FILES) == sorted(DASHBOARDS)


def test_every_panel_has_a_title_description_unit_and_queries_with_ref_ids() -> None:
    for name, board in _boards().items():
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids {ids}"
        taken: set[tuple[int, int]] = set()
        for panel in board["panels"]:
            where = f"{name} panel {panel['id']}"
            assert panel.get("title"), where
            assert panel.get("description"), where
            assert panel["fieldConfig"]["defaults"].get("unit") in UNITS, where
            targets = panel.get("targets", [])
            assert targets, f"{where} has no query"
            refs = [t.get("refId") for t in targets]
            assert all(refs) and len(set(refs)) == len(refs), f"{where}: refIds {refs}"
            assert all(t.get("expr") for t in targets), where
            g = panel["gridPos"]
            assert 0 <= g["x"] and g["x"] + g["w"] <= 24, f"{where} leaves the grid: {g}"
            cells = {
                (x, y)
                for x in range(g["x"], g["x"] + g["w"])
                for y in range(g["y"], g["y"] + g["h"])
            }
            assert not cells & taken, f"{where} overlaps another panel: {g}"
            taken |= cells


def test_every_latency_panel_shows_p50_p95_p99() -> None:
    for name, board in _boards().items():
        for panel in board["panels"]:
            if panel["type"] != "timeseries" or panel["fieldConfig"]["defaults"]["unit"] != "s":
                continue
            quantiles = {
                m
                for t in panel["targets"]
                for m in re.findall(r"histogram_quantile\((0\.\d+)", t["expr"])
            }
            assert {"0.5", "0.95", "0.99"} <= quantiles, (
                f"{name} panel {panel['id']} {panel['title']!r}: {quantiles}"
            )


def test_template_variables_and_drill_annotations() -> None:
    for name, board in _boards().items():
        variables = {v["name"] for v in board["templating"]["list"]}
        assert variables == {"version", "engine", "tenant"}, name
        annotations = {a["name"]: a for a in board["annotations"]["list"]}
        assert "sandbox_drill_events_total" in annotations["Drill events"]["expr"], name
        assert "ALERTS" in annotations["Pages"]["expr"], name
        assert board["uid"].startswith("sandbox-"), name


def test_every_recorded_name_a_query_uses_is_defined() -> None:
    recorded = recorded_names()
    for item in all_exprs():
        for metric in metric_names(item.expr):
            if metric.count(":") == 2 and not metric.startswith("vllm:"):
                assert metric in recorded, f"{item.where}: {metric} is no recording rule"


def test_every_query_parses_and_evaluates(tmp_path: Path) -> None:
    with throwaway_prometheus(tmp_path) as url, httpx.Client(timeout=10) as client:
        failures = []
        for item in all_exprs():
            body = client.get(
                f"{url}/api/v1/query", params={"query": with_variables(item.expr)}
            ).json()
            if body["status"] != "success":
                failures.append(f"{item.where}: {body.get('error')}")
        # and the check can fail: a broken expression is reported
        assert (
            client.get(f"{url}/api/v1/query", params={"query": "sum(rate(x[1m]"}).json()["status"]
            == "error"
        )
    assert not failures, "\n".join(failures)


def test_dashboards_provider_points_at_the_generated_json() -> None:
    provider = yaml.safe_load(
        (
            REPO_ROOT / "stack" / "grafana" / "provisioning" / "dashboards" / "dashboards.yml"
        ).read_text()
    )
    assert provider["providers"][0]["folder"] == "LLM Serving"
    assert provider["providers"][0]["type"] == "file"


# -- Rules ----------------------------------------------------------------------------------------


def test_promtool_check_rules() -> None:
    result = subprocess.run(
        [_tool("promtool"), "check", "rules", *map(str, RULE_FILES)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert {p.name for p in RULE_FILES} == {"recording.yml", "slo-alerts.yml", "cause-alerts.yml"}


def test_promtool_test_rules_one_file_per_rules_file() -> None:
    tests = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
    assert [p.name for p in tests] == sorted(p.name for p in RULE_FILES)
    result = subprocess.run(
        [_tool("promtool"), "test", "rules", *[p.name for p in tests]],
        cwd=PROMETHEUS_DIR / "tests",
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(tests), result.stdout


def test_every_alert_is_tested_firing_and_quiet() -> None:
    for path, rule in _alerts():
        test_file = yaml.safe_load((PROMETHEUS_DIR / "tests" / path.name).read_text())
        cases = [
            c
            for t in test_file["tests"]
            for c in t.get("alert_rule_test", [])
            if c["alertname"] == rule["alert"]
        ]
        assert any(c.get("exp_alerts") for c in cases), f"{rule['alert']}: no test where it fires"
        assert any(not c.get("exp_alerts") for c in cases), (
            f"{rule['alert']}: no test where it must stay quiet"
        )


def test_every_alert_has_severity_for_and_annotations_that_resolve() -> None:
    boards = {b["uid"]: {p["id"] for p in b["panels"]} for b in _boards().values()}
    runbook = (REPO_ROOT / "docs" / "alerts.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9-]", "", line[3:].strip().lower().replace(" ", "-"))
        for line in runbook.splitlines()
        if line.startswith("## ")
    }
    for _, rule in _alerts():
        name = rule["alert"]
        assert re.fullmatch(r"[A-Z][A-Za-z]+", name), name
        assert rule["labels"]["severity"] in {"page", "warning"}, name
        assert rule.get("for"), f"{name} has no for:"
        annotations = rule["annotations"]
        assert {"summary", "description", "dashboard", "runbook"} <= set(annotations), name
        match = re.fullmatch(r"/d/([\w-]+)\?viewPanel=(\d+)", annotations["dashboard"])
        assert match and int(match.group(2)) in boards.get(match.group(1), set()), (
            f"{name}: {annotations['dashboard']}"
        )
        doc, _, anchor = annotations["runbook"].partition("#")
        assert (REPO_ROOT / doc).exists() and anchor in anchors, f"{name}: {annotations['runbook']}"


def test_incident_alerts_exist() -> None:
    """The incidents' expected alerts are defined (a renamed alert would never page a drill)."""
    defined = {rule["alert"] for _, rule in _alerts()}
    for manifest in (REPO_ROOT / "incidents").glob("*/incident.yaml"):
        expected = yaml.safe_load(manifest.read_text())["alerts"]["expected"]
        assert set(expected) <= defined, f"{manifest.parent.name}: {set(expected) - defined}"


# -- Configs --------------------------------------------------------------------------------------


def test_prometheus_config_renders_and_passes_promtool(tmp_path: Path) -> None:
    settings = isolated_settings(tmp_path)
    settings.targets_dir.mkdir(parents=True)
    for job in ("engine", "gateway", "retriever", "loadgen", "prometheus", "alertmanager"):
        (settings.targets_dir / f"{job}.json").write_text("[]")
    config = render_prometheus_config(settings)
    result = subprocess.run(
        [_tool("promtool"), "check", "config", str(config)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 rules found" in result.stdout and "57 rules found" in result.stdout, result.stdout


def test_alertmanager_config_renders_and_passes_amtool(tmp_path: Path) -> None:
    settings = isolated_settings(tmp_path)
    for path in (
        REPO_ROOT / "stack" / "alertmanager" / "alertmanager.yml",
        render_alertmanager_config(settings),
    ):
        result = subprocess.run(
            [_tool("amtool"), "check-config", str(path)], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr
    rendered = yaml.safe_load(render_alertmanager_config(settings).read_text())
    hooks = {h["url"] for r in rendered["receivers"] for h in r.get("webhook_configs", [])}
    assert hooks == {f"http://127.0.0.1:{settings.alert_webhook_port}/alerts"}


def test_alertmanager_routes_pages_and_warnings() -> None:
    amtool = _tool("amtool")
    config = REPO_ROOT / "stack" / "alertmanager" / "alertmanager.yml"

    def route(*labels: str) -> str:
        result = subprocess.run(
            [amtool, "config", "routes", "test", f"--config.file={config}", *labels],
            capture_output=True,
            text=True,
        )
        return result.stdout.strip()

    assert route("alertname=TimeToFirstTokenSLOBreach", "severity=page") == "drill-page"
    assert route("alertname=KVCacheNearFull", "severity=warning") == "drill-warning"
    assert route("alertname=Other") == "drill"


def test_a_canary_warning_is_sent_as_soon_as_a_page() -> None:
    # amtool names the matching route; its group_wait is read from the file.
    result = subprocess.run(
        [
            _tool("amtool"),
            "config",
            "routes",
            "test",
            f"--config.file={REPO_ROOT / 'stack' / 'alertmanager' / 'alertmanager.yml'}",
            "--tree",
            "alertname=CanaryClientErrorRatioHigh",
            "severity=warning",
        ],
        capture_output=True,
        text=True,
    )
    assert 'alertname=~"Canary.*"' in result.stdout, result.stdout
    assert result.stdout.strip().endswith("drill-warning")
    config = yaml.safe_load((REPO_ROOT / "stack" / "alertmanager" / "alertmanager.yml").read_text())
    waits = {tuple(r["matchers"]): r["group_wait"] for r in config["route"]["routes"]}
    canary = waits[('severity="warning"', 'alertname=~"Canary.*"')]
    assert canary == waits[('severity="page"',)] != waits[('severity="warning"',)]


def test_metric_names_of_dashboards_cover_each_component() -> None:
    names = {m for item in dashboard_exprs() for m in metric_names(item.expr)}
    for prefix in (
        "vllm:",
        "sandbox_gateway_",
        "sandbox_retriever_",
        "sandbox_loadgen_",
        "sandbox_autoscaler_",
    ):
        assert any(
            n.startswith(prefix) or f":{prefix}" in n or f":{prefix.rstrip(':')}_" in n
            for n in names
        ), prefix


def test_a_ttft_panel_asks_for_exemplars() -> None:
    # Exemplars live on raw histograms only: the query that asks for them must read one.
    overview = json.loads((REPO_ROOT / "dashboards" / "overview.json").read_text())
    asking = [
        target
        for panel in overview["panels"]
        for target in panel.get("targets", [])
        if target.get("exemplar")
    ]
    assert asking
    assert all(":rate" not in target["expr"] for target in asking)
    assert any("sandbox_gateway_time_to_first_token_seconds_bucket" in t["expr"] for t in asking)
