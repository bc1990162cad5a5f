"""What the dashboard tests share: the dashboards' and rules' queries and metric names (read by
the grader's own ``sandbox.design.promql.metric_names``), and a throwaway Prometheus to parse and
evaluate queries with."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from sandbox.design.promql import metric_names
from sandbox.settings import REPO_ROOT
from tests.support import free_port, poll_until

__all__ = [
    "DASHBOARD_FILES",
    "RULE_FILES",
    "Expr",
    "all_exprs",
    "dashboard_exprs",
    "metric_names",
    "recorded_names",
    "rule_exprs",
    "throwaway_prometheus",
    "with_variables",
]

DASHBOARD_FILES = sorted((REPO_ROOT / "dashboards").glob("*.json"))
RULE_FILES = sorted((REPO_ROOT / "stack" / "prometheus" / "rules").glob("*.yml"))


@dataclass(frozen=True)
class Expr:
    where: str  # "dashboards/overview.json panel 7 A" or "rules/slo-alerts.yml TimeToFirstTokenSLOBreach"
    expr: str


def dashboard_exprs() -> list[Expr]:
    found = []
    for path in DASHBOARD_FILES:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                found.append(
                    Expr(
                        f"dashboards/{path.name} panel {panel['id']} {target.get('refId')}",
                        target["expr"],
                    )
                )
        for annotation in board.get("annotations", {}).get("list", []):
            if annotation.get("expr"):
                found.append(
                    Expr(
                        f"dashboards/{path.name} annotation {annotation['name']}",
                        annotation["expr"],
                    )
                )
    return found


def _rules() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                yield path, rule


def rule_exprs() -> list[Expr]:
    return [
        Expr(f"rules/{path.name} {rule.get('alert') or rule.get('record')}", rule["expr"])
        for path, rule in _rules()
    ]


def all_exprs() -> list[Expr]:
    return dashboard_exprs() + rule_exprs()


def recorded_names() -> set[str]:
    return {rule["record"] for _, rule in _rules() if "record" in rule}


def with_variables(expr: str) -> str:
    """A dashboard query as Grafana sends it with every variable at All."""
    return re.sub(r"\$(version|engine|tenant)\b", ".*", expr)


@contextmanager
def throwaway_prometheus(tmp_path: Path, scrape_self: bool = False) -> Iterator[str]:
    """A real Prometheus with an empty TSDB on a free port; yields its URL."""
    binary = shutil.which("prometheus")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have the prometheus binary (make setup)")
        pytest.skip("prometheus is not installed (run `make setup`)")
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [],
    }
    if scrape_self:
        config["scrape_configs"] = [
            {"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
        ]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        poll_until(
            lambda: httpx.get(f"{url}/-/ready", timeout=2).status_code == 200,
            "throwaway prometheus ready",
            30,
        )
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
