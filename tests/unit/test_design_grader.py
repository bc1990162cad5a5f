"""The dashboard and rules grader against fake incidents in a real Prometheus: every criterion
with a dashboard that meets it and one that does not; bad input reported, never raised."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.design import GradeInputError, Window, grade_dashboards, load_dashboards
from sandbox.design.areas import area_of
from sandbox.design.evaluate import detect
from sandbox.design.lint import lint
from sandbox.design.load import load_dashboard_file, parse_dashboard_json, resolve_variables
from sandbox.design.report import draw_pictures, grade_text
from sandbox.design.rules import grade_rules, load_rules
from sandbox.design.score import Grade
from sandbox.design.window import expected_area, recording_paths
from sandbox.drill.manifest import load_incident
from sandbox.promql import metric_names, quantiles
from sandbox.settings import REPO_ROOT
from tests.design_support import fake_incidents

QUEUE = "sum(vllm:num_requests_waiting)"
KV = "max(vllm:kv_cache_usage_perc)"
PROMPTS = "sum(rate(vllm:prompt_tokens_total[1m]))"
SEARCH = "histogram_quantile(0.99, sum by (le, phase) (rate(sandbox_retriever_phase_seconds_bucket[1m])))"
ERRORS_BY_VERSION = 'sum by (version, status_class) (rate(sandbox_gateway_requests_total{status_class=~"4xx|5xx"}[1m]))'
ERRORS = 'sum(rate(sandbox_gateway_requests_total{status_class=~"4xx|5xx"}[1m]))'
TTFT_P99 = (
    "histogram_quantile(0.99, sum by (le) "
    '(rate(sandbox_gateway_time_to_first_token_seconds_bucket{version="$version"}[$__rate_interval])))'
)
AVG_LATENCY = (
    "sum(rate(sandbox_gateway_request_duration_seconds_sum[1m])) "
    "/ sum(rate(sandbox_gateway_request_duration_seconds_count[1m]))"
)
RATE = "sum(rate(sandbox_gateway_requests_total[1m]))"


def panel(pid: int, title: str, *exprs: str, unit: str = "s", desc: str = "why") -> dict[str, Any]:
    return {
        "id": pid,
        "type": "timeseries",
        "title": title,
        "description": desc,
        "fieldConfig": {"defaults": {"unit": unit}},
        "targets": [{"refId": chr(65 + i), "expr": e} for i, e in enumerate(exprs)],
    }


def dashboard(*panels: dict[str, Any], name: str = "learner") -> dict[str, Any]:
    return {
        "title": name,
        "uid": name,
        "templating": {"list": [{"name": "version", "type": "query", "current": {"value": "v1"}}]},
        "panels": list(panels),
    }


GOOD = dashboard(
    panel(1, "TTFT p99", TTFT_P99),
    panel(2, "Engine queue", QUEUE, unit="short"),
    panel(3, "KV cache", KV, unit="percentunit"),
    panel(4, "Prompt tokens", PROMPTS, unit="short"),
    panel(5, "Retrieval p99 by phase", SEARCH),
    panel(6, "Errors by version", ERRORS_BY_VERSION, unit="reqps"),
    name="good",
)
NAIVE = dashboard(
    panel(1, "Request rate", RATE, unit="", desc=""),
    panel(2, "Average latency", AVG_LATENCY, unit="", desc=""),
    name="naive",
)


@pytest.fixture(scope="module")
def windows(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Window]]:
    with fake_incidents(tmp_path_factory.mktemp("fake")) as found:
        yield found


def grade(data: dict[str, Any], windows: list[Window]) -> Grade:
    return grade_dashboards([parse_dashboard_json(data, data["title"], Path("x.json"))], windows)


def points(g: Grade, criterion: str) -> float:
    return next(c.points for c in g.criteria if c.id == criterion)


# --- the reference and the naive dashboard ---------------------------------------------------


def test_good_dashboard_scores_full_and_naive_at_most_30(windows: list[Window]) -> None:
    good, naive = grade(GOOD, windows), grade(NAIVE, windows)
    assert good.total >= 95, grade_text(good, ["good"])
    assert naive.total <= 30, grade_text(naive, ["naive"])


# --- each criterion: met and not met ----------------------------------------------------------


def test_detection(windows: list[Window]) -> None:
    flat = dashboard(panel(1, "Request rate", RATE, unit="reqps"))
    assert points(grade(GOOD, windows), "detection") == 10
    assert points(grade(flat, windows), "detection") == 0


def test_localisation_credits_the_right_phase_only(windows: list[Window]) -> None:
    wrong = dashboard(panel(1, "Prompt tokens", PROMPTS, unit="short"), panel(2, "TTFT", TTFT_P99))
    assert points(grade(GOOD, windows), "localisation") == 30
    assert points(grade(wrong, windows), "localisation") == 0
    # symptoms alone point nowhere
    assert area_of(TTFT_P99) is None and area_of(QUEUE) == "engine.queue"


def test_time_to_signal_needs_the_right_area(windows: list[Window]) -> None:
    symptom_only = dashboard(panel(1, "TTFT p99", TTFT_P99))
    g = grade(GOOD, windows)
    assert points(g, "time-to-signal") == 10
    assert all("after" in e for e in g.criteria[2].evidence)
    assert points(grade(symptom_only, windows), "time-to-signal") == 0


def test_distinguishability_matrix(windows: list[Window]) -> None:
    g = grade(GOOD, windows)
    assert points(g, "distinguishability") == 20
    assert all(v == 1 for v, _ in g.matrix.values())
    only_ttft = grade(dashboard(panel(1, "TTFT p99", TTFT_P99)), windows)
    assert only_ttft.matrix[("fake-kv", "fake-retrieval")][0] == 0  # both just "slower"
    assert points(only_ttft, "distinguishability") < 5


@pytest.mark.parametrize(
    ("pitfall", "bad", "fixed"),
    [
        (
            "average-only-latency",
            [panel(1, "Avg", AVG_LATENCY), panel(2, "Q", QUEUE, unit="short")],
            [panel(1, "p99", TTFT_P99), panel(2, "Q", QUEUE, unit="short")],
        ),
        (
            "latency-without-queue",
            [panel(1, "p99", TTFT_P99)],
            [panel(1, "p99", TTFT_P99), panel(2, "Q", QUEUE, unit="short")],
        ),
        (
            "memory-without-length",
            [panel(1, "KV", KV, unit="percentunit")],
            [panel(1, "KV", KV, unit="percentunit"), panel(2, "Prompts", PROMPTS, unit="short")],
        ),
        (
            "errors-without-version",
            [panel(1, "Errors", ERRORS, unit="reqps")],
            [panel(1, "Errors", ERRORS_BY_VERSION, unit="reqps")],
        ),
        (
            "no-unit-or-description",
            [panel(1, "Q", QUEUE, unit="")],
            [panel(1, "Q", QUEUE, unit="short")],
        ),
        (
            "unknown-metrics",
            [panel(1, "Q", "sum(vllm:num_requests_queued)", unit="short")],
            [panel(1, "Q", QUEUE, unit="short")],
        ),
    ],
)
def test_each_pitfall(
    pitfall: str, bad: list[dict[str, Any]], fixed: list[dict[str, Any]], windows: list[Window]
) -> None:
    def found(panels: list[dict[str, Any]]) -> set[str]:
        loaded = parse_dashboard_json(dashboard(*panels), "d", Path("d.json"))
        known = {
            "vllm:num_requests_waiting",
            "vllm:kv_cache_usage_perc",
            "vllm:prompt_tokens_total",
        }
        known |= {"sandbox_gateway_time_to_first_token_seconds_bucket"}
        known |= {"sandbox_gateway_request_duration_seconds_sum"}
        known |= {
            "sandbox_gateway_request_duration_seconds_count",
            "sandbox_gateway_requests_total",
        }
        return {f.pitfall for f in lint(loaded.panels, known)}

    assert pitfall in found(bad)
    assert pitfall not in found(fixed)


def test_panel_budget(windows: list[Window]) -> None:
    many = dashboard(*(panel(i, f"Q{i}", QUEUE, unit="short") for i in range(1, 16)))
    assert points(grade(GOOD, windows), "panel-budget") == 5
    assert points(grade(many, windows), "panel-budget") == 2


# --- bad input: reported, never raised --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('{"panels": [}', r"broken.json: not valid JSON: line 1, column 13"),
        ('{"title": "no panels"}', "no 'panels' list"),
    ],
    ids=["not-json", "no-panels"],
)
def test_malformed_json_is_one_clear_error(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "broken.json"
    path.write_text(text)
    with pytest.raises(GradeInputError, match=error):
        load_dashboard_file(path)


def test_syntax_error_names_panel_and_query(windows: list[Window]) -> None:
    data = dashboard(panel(1, "Queue", QUEUE, unit="short"), panel(2, "Broken", "sum(rate(x[1m]"))
    g = grade(data, windows)
    (where, message), *_ = g.query_errors.items()
    assert where == "learner / Broken, query A"
    assert "parse error" in message and "sum(rate(x[1m]" in message
    assert g.total > 0  # the rest is still graded


def test_unknown_datasource_and_repeats_are_reported() -> None:
    data = dashboard(
        {
            **panel(1, "Logs", '{job="gateway"}'),
            "datasource": {"type": "loki", "uid": "logs"},
        },
        {**panel(2, "Per replica", QUEUE, unit="short"), "repeat": "engine"},
        {**panel(3, "Per replica", QUEUE, unit="short"), "repeatPanelId": 2},
        {"type": "row", "title": "Replicas", "repeat": "engine", "panels": []},
        {"id": 4, "type": "text", "title": "notes"},
    )
    loaded = parse_dashboard_json(data, "d", Path("d.json"))
    text = "\n".join(loaded.problems)
    assert "panel 'Logs', query A: datasource type 'loki' is not Prometheus" in text
    assert "panel 'Per replica' repeats over $engine: graded once" in text
    assert "copy made by Grafana's repeat" in text
    assert "row 'Replicas' repeats over $engine" in text
    assert [p.title for p in loaded.panels] == ["Per replica"]


def test_variables_resolve_to_defaults() -> None:
    variables = {"model": ".*", "tenant": ".*", "interval": "1m"}
    out = resolve_variables(
        'rate(x{model_name="$model", tenant=~"${tenant}", a!="[[model]]"}[$interval]) [$__range_s]',
        variables,
    )
    assert out == 'rate(x{model_name=~".*", tenant=~".*", a!~".*"}[1m]) [3600]'


def test_python_module_dashboard(tmp_path: Path) -> None:
    module = tmp_path / "mine.py"
    module.write_text(
        "from grafana_foundation_sdk.builders import dashboard, prometheus, timeseries\n"
        "def mine_dashboard():\n"
        "    return dashboard.Dashboard('Mine').uid('mine').with_panel(\n"
        "        timeseries.Panel().title('Queue').unit('short').description('d')\n"
        f"        .with_target(prometheus.Dataquery().expr({QUEUE!r}).ref_id('A')))\n"
    )
    (loaded,) = load_dashboards([module])
    assert [(p.title, p.queries[0].expr) for p in loaded.panels] == [("Queue", QUEUE)]
    module.write_text("raise RuntimeError('oops')\n")
    with pytest.raises(GradeInputError, match="importing it failed: RuntimeError: oops"):
        load_dashboards([module])


def test_promql_facts() -> None:
    assert metric_names(
        'histogram_quantile(0.99, sum by (le) (rate(a:b_bucket{x="y"}[5m]))) / on(i) c offset 5m > 1e3'
    ) == {"a:b_bucket", "c"}
    assert quantiles(TTFT_P99) == [0.99]
    assert quantiles('phase:x:p95_rate1m{phase="retrieval"}') == [0.95]


def test_detect_needs_a_sustained_excursion() -> None:
    times = [float(t) for t in range(0, 200, 5)]
    calm = [1.0 + 0.01 * (i % 3) for i in range(len(times))]
    spike = list(calm)
    spike[30] = 9.0  # one point: noise, not a signal
    assert detect(times, spike, 100.0, 5.0) is None
    step = [v + (3.0 if t >= 120 else 0.0) for t, v in zip(times, calm, strict=True)]
    found = detect(times, step, 100.0, 5.0)
    assert found is not None and found.direction == 1 and found.at == 120.0


def test_pictures(windows: list[Window], tmp_path: Path) -> None:
    with_empty = {**GOOD, "panels": [*GOOD["panels"], panel(9, "Empty", "sum(no_such_metric)")]}
    loaded = parse_dashboard_json(with_empty, "good", Path("good.json"))
    pictures = draw_pictures([loaded], windows[:1], tmp_path)  # warnings are errors in tests
    assert pictures == [tmp_path / "fake-kv" / "good.png"] and pictures[0].stat().st_size > 1000


# --- rules ------------------------------------------------------------------------------------


def test_rules_grade(windows: list[Window], tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(
        """groups:
- name: learner
  rules:
  - record: job:latency:avg
    expr: sum(rate(sandbox_gateway_request_duration_seconds_sum[1m])) / sum(rate(sandbox_gateway_request_duration_seconds_count[1m]))
  - alert: SlowRequests
    expr: job:latency:avg > 1
    for: 30s
  - alert: CanaryErrors
    expr: sum(rate(sandbox_gateway_requests_total{version="canary",status_class="4xx"}[1m])) > 0
    for: 30s
  - alert: AnyTraffic
    expr: sum(rate(sandbox_gateway_requests_total[1m])) > 0
    for: 1m
  - alert: AnyTrafficForLong
    expr: sum(rate(sandbox_gateway_requests_total[1m])) > 0
    for: 10m
  - alert: KVPercent
    expr: max(vllm:kv_cache_usage_perc) > 80
  - alert: Ghost
    expr: sum(vllm:no_such_metric) > 1
  - alert: Broken
    expr: sum(rate(x[1m]) >
"""
    )
    g = grade_rules(path, windows)
    assert g.pages["fake-kv"] is not None and g.pages["fake-kv"][0] == "SlowRequests"
    assert g.pages["fake-rollout"] is not None and g.pages["fake-rollout"][0] == "CanaryErrors"
    assert all(p[1] <= 60 for p in g.pages.values() if p)
    assert len(g.false_pages) == 6 and all("AnyTraffic" in f for f in g.false_pages)
    # a for: longer than the baseline cannot fire in it, but its condition held all through
    assert sum("held through all of" in f for f in g.false_pages) == 3
    assert set(g.never_fire) == {"KVPercent", "Ghost", "Broken"}
    assert "ratio" in g.never_fire["KVPercent"] and "parse error" in g.never_fire["Broken"]
    clean = tmp_path / "clean.yml"
    clean.write_text(path.read_text().split("  - alert: AnyTraffic")[0])
    assert grade_rules(clean, windows).total == 100


def test_rules_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "r.yml"
    path.write_text("groups: [")
    with pytest.raises(GradeInputError, match="not valid YAML"):
        load_rules(path)
    path.write_text(json.dumps({"rules": []}))
    with pytest.raises(GradeInputError, match="no top-level 'groups'"):
        load_rules(path)


# --- the adapter from recordings --------------------------------------------------------------


def test_expected_area_comes_from_each_manifest() -> None:
    areas = {
        i: expected_area(load_incident(i).manifest)
        for i in ("kv-exhaustion", "cold-start-autoscaling", "slow-retrieval", "bad-rollout")
    }
    assert areas == {
        "kv-exhaustion": "engine.queue",
        "cold-start-autoscaling": "engine.queue",
        "slow-retrieval": "retrieval",
        "bad-rollout": "rollout",
    }


def test_shipped_recordings_serve_as_windows() -> None:
    paths = recording_paths()
    if not paths:
        pytest.skip("no recording shipped yet (incidents/<id>/recording.tar.gz; `make recordings`)")
    from sandbox.design.window import serve_windows

    with serve_windows(paths[:1]) as found:
        (window,) = found
        assert window.start < window.injected_at < window.end


def test_the_project_dashboards_are_the_reference_on_the_shipped_recordings() -> None:
    # The bar, on the real recordings: the project's five dashboards graded together
    # score at least 85, and the starter (rate and average latency) at most 30.
    paths = recording_paths()
    if len(paths) < 2:
        pytest.skip("fewer than two recordings shipped (`make recordings`)")
    from sandbox.design.window import serve_windows

    project = load_dashboards(sorted((REPO_ROOT / "dashboards").glob("*.json")))
    starter = load_dashboards([REPO_ROOT / "docs/examples/starter-dashboard.json"])
    with serve_windows(paths) as windows:
        reference, naive = grade_dashboards(project, windows), grade_dashboards(starter, windows)
    assert reference.total >= 85, grade_text(reference, [d.name for d in project])
    assert naive.total <= 30, grade_text(naive, ["starter"])


def test_project_module_and_its_json_give_the_same_panels() -> None:
    from_module, from_json = load_dashboards(
        [REPO_ROOT / "dashboards/engine.py", REPO_ROOT / "dashboards/engine.json"]
    )
    assert [(p.title, p.queries) for p in from_module.panels] == [
        (p.title, p.queries) for p in from_json.panels
    ]
    assert from_json.name == "engine-2" and not from_module.problems


def test_firing_runs_honour_for_and_gaps() -> None:
    from sandbox.design.rules import firing_runs

    nan = float("nan")
    times = [float(t) for t in range(0, 100, 10)]
    values = [nan, 1, 1, 1, 1, nan, 1, 1, nan, nan]
    assert firing_runs(times, values, 30.0, 10.0) == [(40.0, 40.0)]  # the second run is too short
    assert firing_runs(times, values, 0.0, 10.0) == [(10.0, 40.0), (60.0, 70.0)]


def test_baseline_is_the_steady_part_before_the_injection() -> None:
    window = Window("x", "http://127.0.0.1:1", 0.0, 1000.0, 400.0, "retrieval")
    assert window.baseline_from == 310.0
    steady = Window("x", "http://127.0.0.1:1", 0.0, 1000.0, 400.0, "retrieval", 2.0, 200.0)
    assert steady.baseline_from == 200.0
    # Rates may still ramp when the steady part starts within a rate window of the traffic.
    early = Window("x", "http://127.0.0.1:1", 0.0, 1000.0, 400.0, "retrieval", 2.0, 370.0, 340.0)
    late = Window("x", "http://127.0.0.1:1", 0.0, 1000.0, 400.0, "retrieval", 2.0, 370.0, 300.0)
    assert early.ramping_at_baseline and not late.ramping_at_baseline
    # an idle lead and a ramp before the steady part do not widen the band
    times = [float(t) for t in range(0, 600, 5)]
    values = [0.0 if t < 150 else 2.0 + 0.01 * (int(t) % 3) for t in times]
    values = [v + (0.8 if t >= 400 else 0.0) for t, v in zip(times, values, strict=True)]
    assert detect(times, values, 400.0, 5.0) is None  # the whole window: 0 -> 2 is "normal"
    found = detect(times, values, 400.0, 5.0, steady.baseline_from)
    assert found is not None and found.at == 400.0


def test_cli_reports_bad_input_without_a_traceback(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from sandbox.cli import cli

    broken = tmp_path / "broken.json"
    broken.write_text("{")
    result = CliRunner().invoke(cli, ["dashboards", "grade", str(broken)])
    assert result.exit_code == 1 and "broken.json: not valid JSON" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    rules = tmp_path / "rules.yml"
    rules.write_text("groups: [")
    result = CliRunner().invoke(cli, ["rules", "grade", str(rules)])
    assert result.exit_code == 1 and "not valid YAML" in result.output
