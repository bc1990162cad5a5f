"""Nothing passes vacuously: against a real Prometheus (the binary, with the repo's rules and
nothing to scrape but itself), an anomalous check without data fails, a misspelt metric is
named, and the metric names of the catalog's expressions are read correctly."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.drill.manifest import Check, list_incidents, load_incident
from sandbox.drill.report import _margin
from sandbox.drill.signature import (
    CheckResult,
    evaluate,
    grid_start,
    known_metrics,
    unknown_metrics,
)
from sandbox.promapi import PrometheusClient, Reduce
from sandbox.promql import metric_names
from sandbox.settings import REPO_ROOT
from tests.support import free_port, poll_until

PROMETHEUS = shutil.which("prometheus")


def test_metric_names_leave_out_functions_labels_and_keywords() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, tenant) (rate(foo_bucket{phase="a:b"}[1m]))) '
        "/ on (tenant) group_left () (version_replica:vllm_kv:max or vector(0)) > bool 2"
    )
    assert metric_names(expr) == {"foo_bucket", "version_replica:vllm_kv:max"}
    assert metric_names("max(vllm:num_requests_waiting offset 5m)") == {"vllm:num_requests_waiting"}


@pytest.mark.parametrize("incident_id", list_incidents())
def test_every_catalog_check_names_a_metric(incident_id: str) -> None:
    m = load_incident(incident_id).manifest
    for check in [*m.signature.anomalous, *m.signature.normal, *m.recovery.slis]:
        assert metric_names(check.expr), check.name


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusClient]:
    if PROMETHEUS is None:
        pytest.skip("the prometheus binary is not installed (apt-get install prometheus)")
    tmp = tmp_path_factory.mktemp("prom")
    port = free_port()
    rules = sorted(str(p) for p in (REPO_ROOT / "stack/prometheus/rules").glob("*.yml"))
    config = tmp / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: {rules}\n"
        "scrape_configs:\n"
        f"  - job_name: self\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
    )
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = PrometheusClient(f"http://127.0.0.1:{port}")
    try:
        poll_until(lambda: client.value("up", Reduce.MAX), "Prometheus scraping itself", 30)
        yield client
    finally:
        client.close()
        process.terminate()
        process.wait(10)


def test_an_anomalous_check_without_data_fails(prom: PrometheusClient) -> None:
    now = time.time()
    missing = Check(name="nothing", expr="max(no_such_metric_at_all)", above=0, no_data="ok")
    result = evaluate(prom, missing, "anomalous", now - 30, now, 1)
    assert not result.ok and result.error == "no data in the window"
    # A normal check may say that no data is fine (a workload without RAG has no search).
    assert evaluate(prom, missing, "normal", now - 30, now, 1).ok
    present = Check(name="up", expr="max(up)", above=0.5)
    assert evaluate(prom, present, "anomalous", now - 30, now, 1).ok


def test_the_window_is_judged_up_to_its_end(prom: PrometheusClient) -> None:
    # time() is the evaluation instant, so this breaches only in the window's last half second:
    # a grid counted from the start (end-25, end-15, end-5) would never see it.
    end = time.time()
    late = Check(name="only at the end", expr="time()", above=end - 0.5)
    result = evaluate(prom, late, "anomalous", end - 25, end, 10)
    assert result.ok and result.first_breach_at == pytest.approx(end, abs=0.01)
    assert grid_start(end - 25, end, 10) == pytest.approx(end - 30)
    # The one grid point before the start is not judged.
    early = Check(name="only before", expr="time()", below=end - 25)
    assert not evaluate(prom, early, "anomalous", end - 25, end, 10).breached


def test_an_unknown_metric_is_named(prom: PrometheusClient) -> None:
    known = known_metrics(prom)
    # Recording rules count as known even before they have data.
    assert "version_replica:vllm_kv_cache_usage_perc:max_over_time1m" in known
    checks = [
        Check(name="typo", expr="max(vllm:kv_cache_usge_perc)", above=0.5),
        Check(
            name="fine",
            expr="max(version_replica:vllm_kv_cache_usage_perc:max_over_time1m)",
            above=0.5,
        ),
        Check(name="self", expr="sum(rate(prometheus_http_requests_total[1m]))", above=0),
    ]
    assert unknown_metrics(checks, known) == {"typo": ["vllm:kv_cache_usge_perc"]}


def _catalog(root: Path) -> None:
    """Two incidents built from kv-exhaustion, with checks this Prometheus can answer: one
    whose signature its own metrics satisfy, one whose anomaly has no data."""
    import yaml

    base = yaml.safe_load((REPO_ROOT / "incidents/kv-exhaustion/incident.yaml").read_text())
    notes = (REPO_ROOT / "incidents/kv-exhaustion/notes.md").read_text()
    for incident_id, anomalous in (
        ("satisfied", {"name": "self up", "expr": "max(up)", "above": 0.5}),
        ("absent", {"name": "missing", "expr": "max(no_such_metric_at_all)", "above": 0}),
    ):
        data = {**base, "id": incident_id}
        data["signature"] = {
            "anomalous": [anomalous],
            "normal": [
                {"name": "never", "expr": "max(no_such_metric_either)", "above": 1, "no_data": "ok"}
            ],
        }
        data["recovery"] = {**base["recovery"], "slis": [anomalous]}
        folder = root / incident_id
        folder.mkdir(parents=True)
        (folder / "incident.yaml").write_text(yaml.safe_dump(data))
        (folder / "notes.md").write_text(notes)


def test_judge_window_row_and_expected_alerts(prom: PrometheusClient, tmp_path: Path) -> None:
    import random

    from faults import StackContext
    from sandbox.drill.context import DrillContext
    from sandbox.drill.recovery import judge_window
    from sandbox.drill.result import DrillOptions, DrillResult
    from sandbox.promapi import AlertmanagerClient
    from sandbox.runtime.local import LocalRuntime
    from tests.support import isolated_settings

    _catalog(tmp_path / "incidents")
    incident = load_incident("satisfied", tmp_path / "incidents")
    settings = isolated_settings(tmp_path / "run", prometheus_port=int(prom.url.rsplit(":", 1)[1]))
    runtime = LocalRuntime(settings.run_dir)
    now = time.time()
    result = DrillResult(incident, "auto", now - 30)
    result.injected_at = now - 20
    d = DrillContext(
        incident=incident,
        settings=settings,
        options=DrillOptions(),
        runtime=runtime,
        say=lambda _: None,
        ctx=StackContext.from_settings(settings, runtime),
        prom=prom,
        alertmanager=AlertmanagerClient(settings.alertmanager_url),
        result=result,
        rng=random.Random(0),
    )
    judge_window(d, until=now)
    assert result.matrix == {"absent": False, "satisfied": True}
    assert all(r.ok for r in result.signature)
    # No alert fires on this Prometheus, so the expected ones are reported missing.
    assert result.alerts == []
    assert any(
        "expected TimeToFirstTokenSLOBreach, KVCacheNearFull never fired" in f
        for f in result.failures
    ), result.failures


def test_margins_read_as_plain_numbers() -> None:
    def margin(worst: float, **threshold: float) -> str:
        check = Check.model_validate({"name": "c", "expr": "up", **threshold})
        return _margin(CheckResult(check, "anomalous", True, 0.0, worst, 1))

    assert margin(1.0, above=0.01) == ", 100 times the threshold"
    assert margin(3.88, above=2.0) == ", 1.9 times the threshold"
    assert margin(0.05, below=0.25) == ", the threshold is 5 times it"
    assert margin(0.0, below=0.25) == ", at 0 against the threshold"
